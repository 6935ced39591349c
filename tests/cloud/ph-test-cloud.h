/* ph-test-cloud.h: test fixture around pinhole-cloud.sh (stunnel + Squid + origin), the real
 * pinhole-agent binary, curl, raw sockets and a recording TLS endpoint; plus the origin's pattern.
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The deterministic body served by ph-test-origin's /bytes/N and /chunked/N: byte i of a body is
 * ph_test_pattern_byte (i). The period divides 1 MiB so big precomputed blocks tile exactly. */
#define PH_TEST_PATTERN_PERIOD 65536u

static inline guint8
ph_test_pattern_byte (guint64 offset)
{
  guint32 j = (guint32) (offset % PH_TEST_PATTERN_PERIOD);

  return (guint8) (((j * 2654435761u) >> 24) ^ j);
}

static inline void
ph_test_pattern_fill (guint8 *buf, gsize len, guint64 offset)
{
  for (gsize i = 0; i < len; i++)
    buf[i] = ph_test_pattern_byte (offset + i);
}

/* Hex SHA-256 of the first @len pattern bytes, computed locally. */
char *ph_test_pattern_sha256 (guint64 len);

/* What ph-test-origin's /interim/N sends N times before its 200 (code 100, or 102 and 103 with
 * ?code=), and that 200's body; and the body of its /status/N. */
static inline const char *
ph_test_interim_head (guint code)
{
  switch (code)
    {
      case 102:
        return "HTTP/1.1 102 Processing\r\n\r\n";
      case 103:
        return "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
      default:
        return "HTTP/1.1 100 Continue\r\n\r\n";
    }
}

static inline char *
ph_test_interim_body (guint64 n)
{
  return g_strdup_printf ("the final answer after %" G_GUINT64_FORMAT " interim responses\n", n);
}

static inline char *
ph_test_status_body (guint status)
{
  return g_strdup_printf ("status %u from the origin\n", status);
}

/* --- the cloud end: pinhole-cloud.sh start/stop in a fresh temp dir --- */

typedef struct
{
  char *dir;
  char *script;
  GHashTable *env; /* every KEY=VALUE of cloud.env */
  gboolean owned;  /* stop and remove on free (FALSE when attached to a running cloud) */
  gboolean keep;   /* owned, but leave the files for a post-mortem */
  guint16 tls_port;
  guint16 squid_port;
  guint16 origin_http_port; /* 0 without the origin */
  guint16 origin_https_port;
  const char *server_name;
  const char *pin;
  const char *cert;
  const char *key;
  const char *user;
  const char *password_file;
  const char *squid_access_log;
  const char *origin_ca;
  char *password;
} PhTestCloud;

/* Checks that stunnel4, squid, curl and the agent binary are there. On a miss: under CI=true
 * the test fails, otherwise it is skipped; returns FALSE either way so the caller returns. */
gboolean ph_test_require_tools (void);

/* Starts a cloud end; @first_env and the following strings (NULL-terminated) are KEY=VALUE
 * settings for the script, e.g. "PH_CLOUD_ORIGIN=1". Asserts on failure. */
PhTestCloud *ph_test_cloud_new (const char *first_env, ...) G_GNUC_NULL_TERMINATED;
/* The same in @dir (an empty directory, made if needed; NULL: a fresh temp dir). */
PhTestCloud *ph_test_cloud_new_in (const char *dir, const char *first_env,
                                   ...) G_GNUC_NULL_TERMINATED;
/* Uses a cloud that another process started in @dir (reads @dir/cloud.env). */
PhTestCloud *ph_test_cloud_attach (const char *dir);
const char *ph_test_cloud_get (PhTestCloud *cloud, const char *key);
/* Lines in Squid's access log so far that contain @needle (all lines when NULL). */
guint ph_test_cloud_access_log_lines (PhTestCloud *cloud, const char *needle);
/* The pid recorded for the cloud's stunnel, 0 when it is not running. */
GPid ph_test_cloud_stunnel_pid (PhTestCloud *cloud);
/* Sends @signum to the cloud's stunnel and waits (bounded) until it is gone. */
void ph_test_cloud_kill_stunnel (PhTestCloud *cloud, int signum);
/* Starts stunnel again with the cloud's configuration (same port, key and Squid) and waits until
 * it listens; the cloud's stop ends it as usual. */
void ph_test_cloud_restart_stunnel (PhTestCloud *cloud);
void ph_test_cloud_free (PhTestCloud *cloud);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTestCloud, ph_test_cloud_free)

/* --- the agent under test (binary from $PH_AGENT) --- */

typedef struct
{
  PhTestCloud *cloud; /* not owned */
  GSubprocess *proc;
  char *name;
  char *config_path;
  char *log_path;
  guint16 port;
  gboolean exited;
  int exit_status;
} PhTestAgent;

/* A config pinned to @cloud, listening on a free loopback port; tests change keys freely. */
GKeyFile *ph_test_agent_config (PhTestCloud *cloud);
/* Writes @config next to the cloud, starts the agent and waits for its `listening on` line. */
PhTestAgent *ph_test_agent_start (PhTestCloud *cloud, const char *name, GKeyFile *config);
/* The same, with the agent's descriptor limit (soft and hard, so it cannot raise it) set to
 * @max_fds before it runs. */
PhTestAgent *ph_test_agent_start_with_fd_limit (PhTestCloud *cloud, const char *name,
                                                GKeyFile *config, guint max_fds);
gboolean ph_test_agent_is_running (PhTestAgent *agent);
/* The agent's process id; 0 once it has exited. */
GPid ph_test_agent_get_pid (PhTestAgent *agent);
void ph_test_agent_write_config (PhTestAgent *agent, GKeyFile *config);
void ph_test_agent_signal (PhTestAgent *agent, int signum);
/* SIGTERM and wait (bounded); returns the exit status, or -1 if it had to be killed. */
int ph_test_agent_stop (PhTestAgent *agent);
char *ph_test_agent_log (PhTestAgent *agent);
/* Waits until the log contains @needle at least @count times. */
gboolean ph_test_agent_wait_log (PhTestAgent *agent, const char *needle, guint count,
                                 guint timeout_ms);
char *ph_test_agent_proxy_url (PhTestAgent *agent);
void ph_test_agent_free (PhTestAgent *agent);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTestAgent, ph_test_agent_free)

/* --- curl --- */

typedef struct
{
  int exit_status; /* curl's exit code, or -1 if it did not exit normally */
  GBytes *out;
  char *out_str; /* stdout as a NUL-terminated string */
  char *err;
} PhTestCurl;

/* Runs curl -sS with the given arguments (NULL-terminated) and proxy variables cleared. */
PhTestCurl *ph_test_curl (const char *first_arg, ...) G_GNUC_NULL_TERMINATED;
PhTestCurl *ph_test_curlv (const char *const *args);
void ph_test_curl_free (PhTestCurl *curl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTestCurl, ph_test_curl_free)

/* --- a blocking raw client, for what curl will not send --- */

typedef struct
{
  GSocket *socket;
  GByteArray *pending; /* received, not yet consumed */
  gboolean eof;
} PhTestConn;

PhTestConn *ph_test_conn_new (guint16 port);
/* The same, returning NULL and an error when the connection cannot be made. */
PhTestConn *ph_test_conn_try_new (guint16 port, GError **error);
gboolean ph_test_conn_send (PhTestConn *conn, const void *data, gssize len);
/* Reads a response head (up to and including the blank line); NULL on EOF/timeout. */
char *ph_test_conn_read_head (PhTestConn *conn, guint timeout_ms);
/* Reads exactly @len body bytes (fewer on EOF/timeout) and returns how many it got; the bytes
 * are appended to @into when it is not NULL. */
gsize ph_test_conn_read_body (PhTestConn *conn, gsize len, GByteArray *into, guint timeout_ms);
/* Reads until EOF, returning everything; FALSE in *closed on timeout. */
GBytes *ph_test_conn_read_to_eof (PhTestConn *conn, guint timeout_ms, gboolean *closed);
typedef enum
{
  PH_TEST_CONN_TIMEOUT, /* still open when the time was up */
  PH_TEST_CONN_EOF,     /* an orderly close (FIN) */
  PH_TEST_CONN_RESET,   /* a reset (or another receive error) */
} PhTestConnEnd;

/* Reads until the connection ends or @timeout_ms pass, and counts what it read in *@n_read when
 * not NULL; of that, what fits in 64 KiB of pending bytes is kept there, the rest discarded. */
PhTestConnEnd ph_test_conn_wait_end (PhTestConn *conn, guint timeout_ms, guint64 *n_read);
/* Closes with SO_LINGER 0, so the peer gets a reset, and frees @conn. */
void ph_test_conn_abort (PhTestConn *conn);
void ph_test_conn_free (PhTestConn *conn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTestConn, ph_test_conn_free)

int ph_test_head_status (const char *head);
/* First value of header @name (case-insensitive) in @head, or NULL. */
char *ph_test_head_header (const char *head, const char *name);

/* --- a TLS endpoint that records what reaches it --- */

typedef enum
{
  PH_TEST_RECORDER_SILENT,   /* records, never answers application data */
  PH_TEST_RECORDER_PROXY_OK, /* answers each request head with a 200 (a fake upstream proxy) */
} PhTestRecorderMode;

typedef struct _PhTestRecorder PhTestRecorder;

PhTestRecorder *ph_test_recorder_new (PhTestRecorderMode mode);
guint16 ph_test_recorder_get_port (PhTestRecorder *rec);
/* The recorder certificate's pin, sha256//BASE64. */
const char *ph_test_recorder_get_pin (PhTestRecorder *rec);
/* Copies of everything received so far: raw TCP bytes, decrypted application bytes. */
GBytes *ph_test_recorder_get_raw (PhTestRecorder *rec);
GBytes *ph_test_recorder_get_plain (PhTestRecorder *rec);
guint ph_test_recorder_get_connections (PhTestRecorder *rec);
guint ph_test_recorder_get_handshakes (PhTestRecorder *rec);
void ph_test_recorder_free (PhTestRecorder *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTestRecorder, ph_test_recorder_free)

/* --- small helpers --- */

/* A loopback TCP port that was free a moment ago. */
guint16 ph_test_free_port (void);
/* TRUE if @haystack (binary) contains @needle. */
gboolean ph_test_bytes_contain (GBytes *haystack, const char *needle);
/* The accept queue of the IPv4 loopback listener on @port (connections the kernel completed
 * that nobody accepted yet), or -1 when nothing listens there. */
int ph_test_listen_queue (guint16 port);
/* CPU time (user + system) that process @pid has used, in seconds; negative when it is gone. */
double ph_test_proc_cpu_seconds (GPid pid);
/* How many descriptors process @pid has open; -1 when that cannot be read. */
int ph_test_proc_fd_count (GPid pid);

G_END_DECLS
