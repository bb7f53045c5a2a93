#!/usr/bin/env perl
# Registers sip:USER@example.com with Net::SIP::Simple over PROTO (udp, tcp, tls)
# at HOST:PORT and prints "registered EXPIRES" or the error.
use strict;
use warnings;
use Net::SIP;

my ($proto, $host, $port, $user) = @ARGV;
die "usage: register.pl udp|tcp|tls HOST PORT USER\n" unless $user;
my %leg = (proto => $proto, addr => '127.0.0.1', port => 0, dst => "$host:$port");
$leg{tls} = { SSL_verify_mode => 0 } if $proto eq 'tls';
my $leg = Net::SIP::Leg->new(%leg) or die "no leg: $!\n";
my $ua = Net::SIP::Simple->new(
    # Net::SIP picks a TLS leg only for a sips: target.
    registrar => ($proto eq 'tls' ? "sips:$host:$port" : "$host:$port"),
    domain    => 'example.com',
    from      => "sip:$user\@example.com",
    legs      => [$leg],
);
my $expires = $ua->register(expires => 600);
if ($expires) {
    print "registered $expires\n";
    exit 0;
}
print "failed: ", ($ua->error || 'no answer'), "\n";
exit 1;
