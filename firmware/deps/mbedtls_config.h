/* firmware/deps/mbedtls_config.h — meshlet's mbedTLS 3.6 configuration (MBEDTLS_CONFIG_FILE).
 *
 * build.sh builds mbedTLS with this file in place of the default mbedtls_config.h and installs it
 * AS the prefix's include/mbedtls/mbedtls_config.h, so libwebsockets, meshlet, its unit tests and
 * fuzzers see the very same options (several change struct layouts). Everything meshlet does with
 * TLS is in: TLS 1.2 and 1.3 as client and server, ECDSA (P-256, P-384) and RSA certificates, mTLS,
 * session tickets (resumption in both versions), ALPN, SNI, X25519/P-256/P-384 key exchange,
 * AES-GCM and ChaCha20-Poly1305. What is left out is listed at the end with the reason. The
 * default file this replaces: mbedtls-3.6.6/include/mbedtls/mbedtls_config.h (a rebuild of the
 * dependencies follows any edit: this file is in build.sh's hash).
 */
#ifndef ML_MBEDTLS_CONFIG_H
#define ML_MBEDTLS_CONFIG_H

/* ---- platform ---------------------------------------------------------------------------- */
/* Bignum and AES assembly where the compiler allows it: handshakes cost mostly bignum time. */
#define MBEDTLS_HAVE_ASM
/* Certificate validity dates are checked against the clock; tickets expire by it. */
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_HAVE_TIME_DATE
/* Certificates, keys and CAs are read from the files the config names (x509_crt_parse_file). */
#define MBEDTLS_FS_IO
/* mbedtls_net_*: the controller's status client (runtime/controller/status_tls.c) and lws's
 * mbedTLS glue (mbedtls_net_init). */
#define MBEDTLS_NET_C
/* Readable reasons in meshlet's TLS errors ("X509 - Certificate verification failed"): meshlet
 * prints mbedtls_strerror() text in its logs and `meshlet check` answers. */
#define MBEDTLS_ERROR_C
/* lws calls mbedtls_version_get_string() (its version banner). */
#define MBEDTLS_VERSION_C

/* Locks around mbedTLS's process-wide state ([node] workers = N runs N loops in N threads, each
 * with its own TLS contexts): the PSA key store and its random generator, which TLS 1.3 uses
 * from every thread. Per-connection and per-listener contexts stay unlocked (one loop each). */
#define MBEDTLS_THREADING_C
#define MBEDTLS_THREADING_PTHREAD

/* ---- random numbers ---------------------------------------------------------------------- */
/* The OS entropy source (getrandom) feeding a CTR-DRBG: what meshlet and lws seed with. */
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_CTR_DRBG_C

/* ---- symmetric ciphers ------------------------------------------------------------------- */
/* AES: the GCM suites, the ticket key (AES-256-GCM, tls_server.c) and CTR-DRBG. */
#define MBEDTLS_AES_C
/* The AES instructions of x86-64 (AES-NI) and ARMv8 (crypto extension) when the CPU has them. */
#define MBEDTLS_AESNI_C
#define MBEDTLS_AESCE_C
/* AES-GCM: TLS_AES_128/256_GCM (1.3) and ECDHE-*-AES-GCM (1.2). */
#define MBEDTLS_GCM_C
/* ChaCha20-Poly1305: TLS_CHACHA20_POLY1305_SHA256 and ECDHE-*-CHACHA20-POLY1305, the suites of
 * CPUs without AES instructions (Cortex-A53 without the crypto extension, Cortex-A8). */
#define MBEDTLS_CHACHA20_C
#define MBEDTLS_POLY1305_C
#define MBEDTLS_CHACHAPOLY_C
#define MBEDTLS_CIPHER_C
/* CBC: only for reading a password-protected PKCS#8 key (PBES2 with AES-CBC) far enough to
 * say "it needs a password" (tests/integration/test_cert_checks.py); see the TLS note below. */
#define MBEDTLS_CIPHER_MODE_CBC
#define MBEDTLS_CIPHER_PADDING_PKCS7
#define MBEDTLS_PKCS5_C

/* ---- hashes ------------------------------------------------------------------------------ */
#define MBEDTLS_MD_C
/* SHA-256: the *_SHA256 suites, certificate signatures, config digests (core/sha256.c). */
#define MBEDTLS_SHA224_C
#define MBEDTLS_SHA256_C
/* SHA-384: TLS_AES_256_GCM_SHA384, ECDHE-*-AES256-GCM-SHA384, P-384 certificates. */
#define MBEDTLS_SHA384_C
#define MBEDTLS_SHA512_C
/* SHA-1: certificates of public CAs signed with it still verify as chains (an old root's
 * self-signature is not checked, but intermediates may be), and the PKCS#8 PBES2 PRF default. */
#define MBEDTLS_SHA1_C
/* HKDF: TLS 1.3's key schedule (through PSA). */
#define MBEDTLS_HKDF_C

/* ---- public keys ------------------------------------------------------------------------- */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_OID_C
#define MBEDTLS_ASN1_PARSE_C
/* ECDSA signatures are DER-encoded (sign side). */
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
/* RSA certificates: PKCS#1 v1.5 (TLS 1.2, certificate signatures) and PSS (TLS 1.3 CertificateVerify,
 * rsa_pss_rsae_*; and PSS-signed certificates). */
#define MBEDTLS_RSA_C
#define MBEDTLS_PKCS1_V15
#define MBEDTLS_PKCS1_V21
#define MBEDTLS_X509_RSASSA_PSS_SUPPORT
/* ECDSA certificates and ECDHE. */
#define MBEDTLS_ECP_C
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECDH_C
/* The curves: P-256 and P-384 (certificates and key exchange), X25519 (key exchange: what
 * OpenSSL, grpcio and Go clients offer first). */
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED
/* Faster NIST reductions: a P-256 handshake is mostly these (a few KiB of code). */
#define MBEDTLS_ECP_NIST_OPTIM
/* EC keys whose public point is stored compressed (`openssl ec -conv_form compressed`). */
#define MBEDTLS_PK_PARSE_EC_COMPRESSED

/* ---- certificates ------------------------------------------------------------------------ */
#define MBEDTLS_BASE64_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C

/* ---- PSA crypto: TLS 1.3 runs on it ------------------------------------------------------- */
/* Its algorithms follow from the legacy options above (no MBEDTLS_PSA_CRYPTO_CONFIG). */
#define MBEDTLS_PSA_CRYPTO_C
#define MBEDTLS_PSA_KEY_STORE_DYNAMIC

/* ---- TLS --------------------------------------------------------------------------------- */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_SRV_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_SSL_PROTO_TLS1_3
/* TLS 1.2 key exchanges: ECDHE with an ECDSA or an RSA certificate (forward secrecy only). */
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED
/* TLS 1.3: full handshakes (ephemeral) and resumption with a ticket (psk_dhe_ke, which every
 * client offers; plain psk_ke without a fresh key exchange is left out). */
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL_ENABLED
/* The middlebox-compatible TLS 1.3 handshake: boxes on a gateway's path drop the other one. */
#define MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE
/* Session resumption: tickets (1.2 and 1.3); the server's ticket keys (tls_server.c). */
#define MBEDTLS_SSL_SESSION_TICKETS
#define MBEDTLS_SSL_TICKET_C
/* "h2" (gRPC) and "http/1.1" (fleet, admin) negotiation. */
#define MBEDTLS_SSL_ALPN
/* Clusters and the fleet client send the server's name; lws's server picks vhosts by it. */
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
/* mbedtls_ssl_get_peer_cert (peer identity, tls/peer_id.c); TLS 1.3 requires it. */
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE
/* RFC 7627: TLS 1.2 without it is open to triple-handshake attacks. */
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
/* Precise alerts (bad_certificate, unknown_ca, ...): peers and tests read them. */
#define MBEDTLS_SSL_ALL_ALERT_MESSAGES
/* Each connection's output record buffer is 4 KiB instead of 16 (records we send are at most
 * 4 KiB; a peer reads any size): 63 -> 48 KiB per idle TLS connection (tests/bench/tls.sh). The
 * input buffer stays 16 KiB: a peer may always send full records. */
#define MBEDTLS_SSL_OUT_CONTENT_LEN 4096

/* ---- left out, and why ---------------------------------------------------------------------
 * (Not left out: with CBC in for PKCS#8 above, the TLS 1.2 ECDHE-*-AES-CBC suites stay offered
 *   after the AEAD ones, as in mbedTLS's default configuration; MBEDTLS_SSL_CIPHERSUITES would
 *   drop them from the list but not their code.)
 * RSA, DHE, ECDH (static) and all PSK key exchanges: no forward secrecy, or no PSKs in meshlet.
 * DES/3DES, Camellia, ARIA, CCM, CMAC, NIST-KW, CFB/OFB/CTR/XTS modes, MD5, RIPEMD-160, SHA-3,
 *   other curves (P-192/224/521, secp*k1, Brainpool, X448), DHM, ECJPAKE, LMS, PKCS#7, PKCS#12:
 *   no suite or certificate meshlet accepts needs them.
 * CRL, CSR and certificate writing, PEM and key writing (PK_WRITE_C): meshlet neither checks
 *   CRLs nor issues certificates or keys.
 * PSA storage (PSA_CRYPTO_STORAGE_C, PSA_ITS_FILE_C): no persistent keys.
 * SSL cache (server-side session cache): resumption is by tickets only.
 * Renegotiation, max fragment length, encrypt-then-MAC (CBC only), context serialization,
 *   keying material export, DTLS (all of it), SSL cookies, timing: unused.
 * DEBUG_C, SELF_TEST, VERSION_FEATURES, GENPRIME (key generation), RSA_ALT, deterministic ECDSA
 *   (HMAC-DRBG; randomized ECDSA with the CTR-DRBG is as sound), PLATFORM_C: not needed at run
 *   time.
 * PK_PARSE_EC_EXTENDED: keys with explicit curve parameters (only named curves are accepted).
 */

#endif /* ML_MBEDTLS_CONFIG_H */
