/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-socks.h: SOCKS5 (RFC 1928) and SOCKS4/4a on the listener's port: a strict parser of what
 * the client sends before its tunnel (the SOCKS5 greeting, the username/password sub-negotiation
 * of RFC 1929, then the request), and the replies. CONNECT only; a name stays a name (never
 * resolved here). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  PH_SOCKS_NONE = 0,
  PH_SOCKS4 = 4,
  PH_SOCKS5 = 5,
} PhSocksVersion;

typedef enum
{
  PH_SOCKS_MORE,  /* a valid prefix: read more */
  PH_SOCKS_DONE,  /* complete: *consumed bytes were it */
  PH_SOCKS_ERROR, /* refuse with *reply_code, then close */
} PhSocksResult;

/* SOCKS5 reply codes (RFC 1928 §6) and the SOCKS4 ones. */
#define PH_SOCKS5_SUCCEEDED 0x00
#define PH_SOCKS5_GENERAL_FAILURE 0x01
#define PH_SOCKS5_NOT_ALLOWED 0x02
#define PH_SOCKS5_HOST_UNREACHABLE 0x04
#define PH_SOCKS5_CONNECTION_REFUSED 0x05
#define PH_SOCKS5_COMMAND_NOT_SUPPORTED 0x07
#define PH_SOCKS5_ATYP_NOT_SUPPORTED 0x08
#define PH_SOCKS5_NO_AUTH 0x00
#define PH_SOCKS5_USERPASS 0x02
#define PH_SOCKS5_NO_ACCEPTABLE_METHODS 0xFF
/* RFC 1929: the sub-negotiation's version and its reply's status (any other than 0 fails). */
#define PH_SOCKS5_AUTH_VERSION 0x01
#define PH_SOCKS5_AUTH_SUCCESS 0x00
#define PH_SOCKS5_AUTH_FAILURE 0x01
#define PH_SOCKS4_GRANTED 0x5A
#define PH_SOCKS4_REJECTED 0x5B

#define PH_SOCKS5_REPLY_LEN 10
#define PH_SOCKS4_REPLY_LEN 8
#define PH_SOCKS5_AUTH_REPLY_LEN 2
/* Bounds: a SOCKS4 user id and a 4a host name, like a SOCKS5 name, are at most 255 bytes. */
#define PH_SOCKS_MAX_NAME 255

typedef struct
{
  char host[PH_SOCKS_MAX_NAME + 1]; /* a name, a dotted IPv4 or an IPv6 text (no brackets) */
  guint16 port;
  gboolean is_name; /* ATYP 3 or SOCKS4a */
} PhSocksRequest;

/* The methods a SOCKS5 greeting offers that the agent knows. */
typedef enum
{
  PH_SOCKS5_OFFERS_NO_AUTH = 1 << 0,
  PH_SOCKS5_OFFERS_USERPASS = 1 << 1,
} PhSocks5Offers;

/* RFC 1929's UNAME and PASSWD as the client sent them (1 to 255 bytes, and 0 to 255), each
 * NUL-terminated after its length. Wipe it with ph_socks5_credentials_wipe(). */
typedef struct
{
  char username[PH_SOCKS_MAX_NAME + 1];
  char password[PH_SOCKS_MAX_NAME + 1];
  gsize username_len;
  gsize password_len;
} PhSocks5Credentials;

/* The version a connection's first byte announces: PH_SOCKS_NONE for anything else (HTTP). */
PhSocksVersion ph_socks_detect (guint8 first_byte);

/* The SOCKS5 greeting VER NMETHODS METHODS. On DONE, *offers says which of no authentication
 * and username/password it offers (others are ignored). ERROR: not a SOCKS5 greeting. */
PhSocksResult ph_socks5_parse_greeting (const guint8 *data, gsize len, gsize *consumed,
                                        PhSocks5Offers *offers);

/* The method to answer a greeting that offers @offers: 0x00, 0x02, or 0xFF (answer it, then
 * close). A loopback client needs no authentication, and signs in only when it offers nothing
 * but username/password and there are users to check it against. Another client must sign in
 * when there are users (@have_users), and is served as a loopback one when there are none (the
 * listener's allow-list is what limits it then). */
guint8 ph_socks5_choose_method (PhSocks5Offers offers, gboolean loopback, gboolean have_users);

/* Whether a client must sign in: not on loopback, and there are users. A SOCKS4 client, which has
 * no password to give, is then refused. */
gboolean ph_socks_must_sign_in (gboolean loopback, gboolean have_users);

/* RFC 1929's VER ULEN UNAME PLEN PASSWD, after a method reply of 0x02. ERROR: a version other
 * than 1 or an empty name (answer with a failure, then close). */
PhSocksResult ph_socks5_parse_auth (const guint8 *data, gsize len, gsize *consumed,
                                    PhSocks5Credentials *credentials);

/* Whether @credentials carry @expected (NULL: an unknown user, never equal), in a time that does
 * not depend on where the two differ. */
gboolean ph_socks5_check_password (const char *expected, const PhSocks5Credentials *credentials);

void ph_socks5_credentials_wipe (PhSocks5Credentials *credentials);

/* The request after the greeting (SOCKS5), or the whole of a SOCKS4/4a one. On ERROR,
 * *reply_code is the code to answer with (SOCKS4: 0x5B). */
PhSocksResult ph_socks_parse_request (PhSocksVersion version, const guint8 *data, gsize len,
                                      gsize *consumed, PhSocksRequest *request, guint8 *reply_code);

/* "CONNECT host:port HTTP/1.1" with its Host header, the head an HTTP client would send. */
char *ph_socks_request_to_connect (const PhSocksRequest *request);

void ph_socks5_build_method_reply (guint8 method, guint8 out[2]);
/* RFC 1929's reply: VER 1, STATUS 0 (@ok) or 1. */
void ph_socks5_build_auth_reply (gboolean ok, guint8 out[PH_SOCKS5_AUTH_REPLY_LEN]);
/* VER REP RSV ATYP=1 BND.ADDR=0.0.0.0 BND.PORT=0 */
void ph_socks5_build_reply (guint8 code, guint8 out[PH_SOCKS5_REPLY_LEN]);
void ph_socks4_build_reply (gboolean granted, guint8 out[PH_SOCKS4_REPLY_LEN]);

/* The SOCKS5 code for what an HTTP CONNECT would have been answered: @status, the agent's error
 * @kind (NULL when the status is the cloud proxy's), and Squid's X-Squid-Error (or NULL). */
guint8 ph_socks5_code_for (guint status, const char *kind, const char *squid_error);

G_END_DECLS
