#ifndef CSIPTLS_SHIMS_H
#define CSIPTLS_SHIMS_H
// One C function per OpenSSL function-like macro (and one constant per SSL_OP_*)
// that Swift cannot import. Only SIPTLS uses these.
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdint.h>

extern const uint64_t CSIPTLSShims_SSL_OP_NO_RENEGOTIATION;
extern const uint64_t CSIPTLSShims_SSL_OP_NO_COMPRESSION;
extern const uint64_t CSIPTLSShims_SSL_OP_CIPHER_SERVER_PREFERENCE;
extern const uint64_t CSIPTLSShims_SSL_OP_NO_TICKET;
/// XN_FLAG_RFC2253 without escaping UTF-8 bytes.
extern const unsigned long CSIPTLSShims_XN_FLAG_RFC2253_UTF8;

int CSIPTLSShims_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
int CSIPTLSShims_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version);
long CSIPTLSShims_SSL_CTX_set_mode(SSL_CTX *ctx, long mode);
int CSIPTLSShims_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list);
long CSIPTLSShims_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode);
int CSIPTLSShims_SSL_CTX_add1_chain_cert(SSL_CTX *ctx, X509 *cert);
int CSIPTLSShims_SSL_set_tlsext_host_name(SSL *ssl, const char *name);
long CSIPTLSShims_BIO_set_mem_eof_return(BIO *bio, long value);
/// The bytes a memory BIO has allocated for its data (BUF_MEM max), 0 when it has none.
size_t CSIPTLSShims_BIO_mem_capacity(BIO *bio);
int CSIPTLSShims_sk_GENERAL_NAME_num(const GENERAL_NAMES *names);
const GENERAL_NAME *CSIPTLSShims_sk_GENERAL_NAME_value(const GENERAL_NAMES *names, int i);
void CSIPTLSShims_GENERAL_NAMES_free(GENERAL_NAMES *names);
void CSIPTLSShims_OPENSSL_free(void *p);
/// EVP_EC_gen("P-256"): a new ECDSA P-256 key, or NULL.
EVP_PKEY *CSIPTLSShims_generate_p256_key(void);
/// The certificate's subjectAltName extension (owned: free with CSIPTLSShims_GENERAL_NAMES_free), or NULL.
GENERAL_NAMES *CSIPTLSShims_X509_get_subject_alt_names(const X509 *cert);
/// Adds an X509v3 extension given in the openssl config syntax, e.g. ("subjectAltName", "DNS:a,IP:1.2.3.4").
int CSIPTLSShims_X509_add_ext_text(X509 *cert, const char *name, const char *value);
/// Whether the certificate has a subjectAltName extension at all.
int CSIPTLSShims_X509_has_subject_alt_name(const X509 *cert);
/// An HMAC-SHA256 context initialised with `key`, to be copied for each MAC
/// (CSIPTLSShims_hmac_sha256_keyed) and never used directly; NULL on failure.
/// Free with EVP_MAC_CTX_free.
EVP_MAC_CTX *CSIPTLSShims_hmac_sha256_new(const unsigned char *key, size_t length);
/// HMAC-SHA256 of `message` under the key `keyed` was made with, into `out` (32 bytes):
/// 1 on success. Only reads `keyed` (it is duplicated), so threads may share it.
int CSIPTLSShims_hmac_sha256_keyed(const EVP_MAC_CTX *keyed, const unsigned char *message, size_t length,
                                   unsigned char *out);
#endif
