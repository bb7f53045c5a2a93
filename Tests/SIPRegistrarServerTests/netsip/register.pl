#!/usr/bin/env perl
# Registers sip:USER@example.com with Net::SIP::Simple over PROTO (udp, tcp, tls)
# at HOST:PORT and prints "registered EXPIRES" or the error. With PASSWORD it
# answers digest challenges (Net::SIP speaks MD5 with qop=auth). FROM_DOMAIN
# in the environment replaces example.com.
use strict;
use warnings;
use Net::SIP;

my ($proto, $host, $port, $user, $password) = @ARGV;
die "usage: register.pl udp|tcp|tls HOST PORT USER [PASSWORD]\n" unless $user;
my %leg = (proto => $proto, addr => '127.0.0.1', port => 0, dst => "$host:$port");
# CLIENT_CERT / CLIENT_KEY in the environment: a client certificate for the TLS leg.
$leg{tls} = { SSL_verify_mode => 0,
              $ENV{CLIENT_CERT} ? (SSL_cert_file => $ENV{CLIENT_CERT}, SSL_key_file => $ENV{CLIENT_KEY}) : () }
    if $proto eq 'tls';
my $leg = Net::SIP::Leg->new(%leg) or die "no leg: $!\n";
my $ua = Net::SIP::Simple->new(
    # Net::SIP picks a TLS leg only for a sips: target.
    registrar => ($proto eq 'tls' ? "sips:$host:$port" : "$host:$port"),
    domain    => ($ENV{FROM_DOMAIN} || 'example.com'),
    from      => "sip:$user\@" . ($ENV{FROM_DOMAIN} || 'example.com'),
    legs      => [$leg],
);
my $expires = $ua->register(expires => 600, defined $password ? (auth => [$user, $password]) : ());
if ($expires) {
    print "registered $expires\n";
    exit 0;
}
print "failed: ", ($ua->error || 'no answer'), "\n";
exit 1;
