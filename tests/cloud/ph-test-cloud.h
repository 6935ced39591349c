/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-test-cloud.h: test fixture around pinhole-cloud.sh (stunnel + Squid + origin), the real
 * pinhole-agent binary, curl, raw sockets and a recording TLS endpoint; a runner for cases in
 * subprocesses around a shared cloud end; plus the origin's pattern. */

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
  GPtrArray *agent_logs; /* the log and stdout of each agent this process started on it */
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
/* The same once Squid's log has settled: it logs a connection a moment after it ends, those that
 * end before a request too, so a baseline taken at once could miss what came just before. */
guint ph_test_cloud_settled_access_log_lines (PhTestCloud *cloud, const char *needle);
/* The pid recorded for the cloud's stunnel, 0 when it is not running. */
GPid ph_test_cloud_stunnel_pid (PhTestCloud *cloud);
/* Sends @signum to the cloud's stunnel and waits (bounded) until it is gone. */
void ph_test_cloud_kill_stunnel (PhTestCloud *cloud, int signum);
/* Starts stunnel again with the cloud's configuration (same port, key and Squid) and waits until
 * it listens; the cloud's stop ends it as usual. */
void ph_test_cloud_restart_stunnel (PhTestCloud *cloud);
/* Asserts that @text (from @what, which a failure names) holds the cloud's password in none of
 * the forms a leak would take: as it is, in base64, or in the Basic token of user:password; nor,
 * when @other_password is not NULL, that password in those forms (an agent given a wrong password
 * must hide it just as well). */
void ph_test_cloud_assert_redacted (PhTestCloud *cloud, const char *what, const char *text,
                                    const char *other_password);
/* The same for the log and the stdout of every agent this process started on @cloud since the
 * last call (each agent stopped first, so its log is whole); returns how many files it read. */
guint ph_test_cloud_assert_agents_redacted (PhTestCloud *cloud, const char *other_password);
void ph_test_cloud_free (PhTestCloud *cloud);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTestCloud, ph_test_cloud_free)

/* --- a test binary's cases, each in a subprocess of its own, around one shared cloud end --- */

/* Runs the cases registered so far; what main returns. In the main process: makes the shared
 * cloud end's directory (PH_TEST_CLOUD_DIR, for the cases' subprocesses), lets a failed case be
 * reported while the others still run, and at the end stops the shared cloud end (its files kept
 * for a post-mortem when a case failed). In a case's subprocess: runs that case. */
int ph_test_run_cases (void);
/* The shared cloud end (stunnel + Squid + the origin): started in the main process by the first
 * case that asks, so that it outlives the cases' subprocesses; attached to in a subprocess. */
PhTestCloud *ph_test_shared_cloud (void);
/* TRUE where a case's body runs: in its subprocess, or in the main process when PH_TEST_NO_FORK
 * is set (a case in one process, for a debugger). */
gboolean ph_test_case_runs_here (void);
/* For a case's test function. In the main process: runs the case again in a subprocess (so one
 * failure does not hide the others, and a hang is cut after @timeout_s), asserts that it passed
 * and returns FALSE. Where the case runs (ph_test_case_runs_here): TRUE, run the body. */
gboolean ph_test_case_fork (guint timeout_s);

/* --- the agent under test (binary from $PH_AGENT) --- */

typedef struct
{
  PhTestCloud *cloud; /* not owned */
  GSubprocess *proc;
  char *name;
  char *config_path;
  char *log_path;
  char *stdout_path;
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
/* Prints @why, whether the agent runs (or how it ended) and its log, for a failure to explain. */
void ph_test_agent_print_log (PhTestAgent *agent, const char *why);
/* ph_test_agent_stop, asserting a clean exit (status 0); the log is printed when it was not. */
void ph_test_agent_stop_ok (PhTestAgent *agent);
/* The agent's access lines that carry every one of @fields, whole fields ("status=50" does not
 * match "status=503"). */
GPtrArray *ph_test_agent_access_lines (PhTestAgent *agent, const char *const *fields);
/* Waits (bounded) until at least @count access lines carry all of @fields; returns how many do. */
guint ph_test_agent_wait_access (PhTestAgent *agent, const char *const *fields, guint count,
                                 guint timeout_ms);
/* ph_test_agent_wait_access, asserting they came; the log is printed when they did not. */
void ph_test_agent_assert_access (PhTestAgent *agent, const char *const *fields, guint count,
                                  guint timeout_ms);
/* The refusal form of CONTRACT.md, as far as every refusal has it: @status, X-Pinhole-Error
 * @kind, Connection: close, and a body when @body is not NULL. Prints the answer and the agent's
 * log when it is not that. */
void ph_test_assert_refusal (PhTestAgent *agent, const char *head, const char *body, int status,
                             const char *kind);
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

/* --- requests through the agent, on a raw connection --- */

/* GET http://127.0.0.1:@port@path, with its Host field. */
char *ph_test_get_request (guint16 port, const char *path);
/* CONNECT 127.0.0.1:@port, with its Host field. */
char *ph_test_connect_request (guint16 port);
/* One request on a fresh connection to @agent_port: returns the response head (NULL if none came)
 * and, in *@body, its body (by Content-Length, else up to EOF; none after a 200 to a CONNECT);
 * in *@elapsed_ms the time to the head. @body and @elapsed_ms may be NULL. */
char *ph_test_exchange (guint16 agent_port, const char *request, char **body, gint64 *elapsed_ms,
                        guint timeout_ms);

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
