/* Test certificates (ECDSA P-256, valid 100 years from 2026), made once with openssl:
 * a CA; server (CN server-cn, DNS localhost); client (CN client-cn, URI SAN
 * spiffe://unit.test/ns/a/sa/client). For unit tests only: the keys are public. */
#ifndef ML_TEST_TLS_CERTS_H
#define ML_TEST_TLS_CERTS_H

static const char TEST_CA_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBejCCASGgAwIBAgIUPSkCFDrfPni8FWDv20z7pOZ14DkwCgYIKoZIzj0EAwIw\n"
    "EjEQMA4GA1UEAwwHdW5pdC1jYTAgFw0yNjEyMDcxMzI3NDNaGA8yMTI2MTExMzEz\n"
    "Mjc0M1owEjEQMA4GA1UEAwwHdW5pdC1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
    "A0IABLK8HCjD8jc4Kf2+mzPkySN2eWGSDNwVk1+J9pN3Vovwlbw20yoEIMvrqWEL\n"
    "y4BaNFkJ4deHQHuMzmhvCv4xXMGjUzBRMB0GA1UdDgQWBBTf9zy+/tauXXfhSXwR\n"
    "D14xTrEbgTAfBgNVHSMEGDAWgBTf9zy+/tauXXfhSXwRD14xTrEbgTAPBgNVHRMB\n"
    "Af8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIFM2aG5cGg79TUk33iix0kLbX2Cs\n"
    "xO07joiVsX+xAXYsAiAc9WXDEvkcmzbPyFv5MBgxCFUoVk1arkfHAqwhMFN9/w==\n"
    "-----END CERTIFICATE-----\n"
    ;

static const char TEST_SERVER_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBgTCCASigAwIBAgIUcNpWVm/IRV6OwRi8LIFqoQAKEhYwCgYIKoZIzj0EAwIw\n"
    "EjEQMA4GA1UEAwwHdW5pdC1jYTAgFw0yNjEyMDcxMzI3NDNaGA8yMTI2MTExMzEz\n"
    "Mjc0M1owFDESMBAGA1UEAwwJc2VydmVyLWNuMFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
    "AQcDQgAECS0jnW1w2BU8XNx5ZEn8rCAejfrN8aBDGr+fq8mkOMqLcFu1ukqj7yzV\n"
    "+h5ywfZtuGbpQWAtq9Urdv7MNED8S6NYMFYwFAYDVR0RBA0wC4IJbG9jYWxob3N0\n"
    "MB0GA1UdDgQWBBR4vE3ltY1ZtgFxe6S7OtktqvngijAfBgNVHSMEGDAWgBTf9zy+\n"
    "/tauXXfhSXwRD14xTrEbgTAKBggqhkjOPQQDAgNHADBEAiBa9dZorFgjWGYXLkIk\n"
    "2xPqsc96ZxHe7t+DTVvOG6ecnAIgAKBemuY9nng3OdQXwjPuFAw4hicOdsLpBoss\n"
    "J/WIHMY=\n"
    "-----END CERTIFICATE-----\n"
    ;

static const char TEST_SERVER_KEY[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIPNoiTwCmqNt5y7Wk3LX5XtRbEUY/av6DCqSSsR3TYsZoAoGCCqGSM49\n"
    "AwEHoUQDQgAECS0jnW1w2BU8XNx5ZEn8rCAejfrN8aBDGr+fq8mkOMqLcFu1ukqj\n"
    "7yzV+h5ywfZtuGbpQWAtq9Urdv7MNED8Sw==\n"
    "-----END EC PRIVATE KEY-----\n"
    ;

static const char TEST_CLIENT_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBmjCCAUCgAwIBAgIUcNpWVm/IRV6OwRi8LIFqoQAKEhcwCgYIKoZIzj0EAwIw\n"
    "EjEQMA4GA1UEAwwHdW5pdC1jYTAgFw0yNjEyMDcxMzI3NDNaGA8yMTI2MTExMzEz\n"
    "Mjc0M1owFDESMBAGA1UEAwwJY2xpZW50LWNuMFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
    "AQcDQgAEqzYLqORERMfYVOVoWzQFl/K5tfVInh396th+f/9FUGbYQRTnFC5Js/d8\n"
    "wi4I5fFqiP33ylLv10XWindQp3heIKNwMG4wLAYDVR0RBCUwI4Yhc3BpZmZlOi8v\n"
    "dW5pdC50ZXN0L25zL2Evc2EvY2xpZW50MB0GA1UdDgQWBBS7popOA//5xURUR9DH\n"
    "rUf381qVGDAfBgNVHSMEGDAWgBTf9zy+/tauXXfhSXwRD14xTrEbgTAKBggqhkjO\n"
    "PQQDAgNIADBFAiEA6ZTOmN4PwyNTTSzA4zClrWQkyg9jHjgToVbrIfDG2y8CIHy0\n"
    "plwZJqoYhtjxdua6HEWbV4vhw/YQ+Z+buu7adTnD\n"
    "-----END CERTIFICATE-----\n"
    ;

static const char TEST_CLIENT_KEY[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIJk4d5qvaQW8BnJ2l4UU4nYPBYwD4XCVfdZMVcjOCSR1oAoGCCqGSM49\n"
    "AwEHoUQDQgAEqzYLqORERMfYVOVoWzQFl/K5tfVInh396th+f/9FUGbYQRTnFC5J\n"
    "s/d8wi4I5fFqiP33ylLv10XWindQp3heIA==\n"
    "-----END EC PRIVATE KEY-----\n"
    ;

#endif
