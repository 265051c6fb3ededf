/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The wire codec: pure functions over byte buffers, no I/O, so that the
 * decoder can be fuzzed. The protocol is described in docs/protocol.md. */

#include <glib.h>

G_BEGIN_DECLS

#define AFORK_WIRE_PROTOCOL_VERSION 1
#define AFORK_WIRE_HEADER_SIZE      5
/* An absurd length is refused before anything is allocated for it. */
#define AFORK_WIRE_MAX_PAYLOAD      (256u * 1024u * 1024u)

typedef enum
{
  AFORK_WIRE_FD       = 'h',  /* empty, one fd attached */
  AFORK_WIRE_ARGS     = 'a',  /* string list */
  AFORK_WIRE_REQUIRE  = 'm',  /* string list of module names */
  AFORK_WIRE_CALL     = 'c',  /* string list: symbol, args… */
  AFORK_WIRE_FORK     = 'f',  /* empty */
  AFORK_WIRE_RUN      = 'r',  /* string list: symbol */
  AFORK_WIRE_WATCH    = 'w',  /* empty: the last fd reports the next fork's wait status */
  AFORK_WIRE_EXEC     = 'x',  /* string list: stdio, cwd, has-env, argc, argv…, env… */
  AFORK_WIRE_SANDBOX  = 's',  /* a sandbox description, see AforkWireSandbox */
  AFORK_WIRE_REPLY_OK = 'k',  /* u32 pid */
  AFORK_WIRE_REPLY_ERROR = 'e', /* u32 code, string list: domain, message */

  /* Calls, on a pool worker's own socket once it runs its call loop. */
  AFORK_WIRE_POOL_CALL   = 'Q', /* u32 n_fds, strings: function, type, data */
  AFORK_WIRE_POOL_RING   = 'B', /* u32 n_fds (1: a memfd), u32 ring size */
  AFORK_WIRE_POOL_RESULT = 'R', /* u32 n_fds, strings: type, data */
  AFORK_WIRE_POOL_ERROR  = 'E', /* u32 code, strings: domain, message */
  AFORK_WIRE_POOL_EVENT  = 'V', /* strings: name, type, data */
} AforkWireCommand;

typedef enum
{
  AFORK_WIRE_STATUS_OK,
  AFORK_WIRE_STATUS_NEED_MORE,
  AFORK_WIRE_STATUS_INVALID,
} AforkWireStatus;

/* A string inside a payload: not NUL-terminated, points into the payload. */
typedef struct
{
  const guint8 *data;
  guint32       len;
} AforkWireString;

/* The payload of `s`, version 1 (docs/protocol.md):
 *   u32 version, u32 flags, u32 memory limit (low half), u32 memory limit
 *   (high half), u32 CPU limit in seconds, u32 minimum Landlock ABI, then
 *   for each allowed tree: u32 access, string path (absolute, no NUL). */
#define AFORK_WIRE_SANDBOX_VERSION     1
#define AFORK_WIRE_SANDBOX_HEADER_SIZE 24

typedef enum
{
  AFORK_WIRE_SANDBOX_NETWORK     = 1 << 0,
  AFORK_WIRE_SANDBOX_EXEC        = 1 << 1,
  AFORK_WIRE_SANDBOX_BEST_EFFORT = 1 << 2,
} AforkWireSandboxFlags;

#define AFORK_WIRE_SANDBOX_ALL_FLAGS \
  (AFORK_WIRE_SANDBOX_NETWORK | AFORK_WIRE_SANDBOX_EXEC | AFORK_WIRE_SANDBOX_BEST_EFFORT)

typedef enum
{
  AFORK_WIRE_SANDBOX_READ  = 1,
  AFORK_WIRE_SANDBOX_WRITE = 2,
} AforkWireSandboxAccess;

typedef struct
{
  guint32         access;   /* AforkWireSandboxAccess */
  AforkWireString path;
} AforkWireSandboxPath;

typedef struct
{
  guint32  flags;           /* AforkWireSandboxFlags */
  guint64  memory_limit;    /* bytes, 0: none */
  guint32  cpu_limit;       /* seconds, 0: none */
  guint32  landlock_abi;    /* the lowest acceptable, 0: any */
  GArray  *paths;           /* AforkWireSandboxPath, pointing into the payload */
} AforkWireSandbox;

void            _afork_wire_encode_u32        (guint8           *out,
                                               guint32           value);
void            _afork_wire_put_u32           (GByteArray       *out,
                                               guint32           value);
gsize           _afork_wire_begin             (GByteArray       *out,
                                               guint8            command);
void            _afork_wire_put_string        (GByteArray       *out,
                                               const void       *data,
                                               gsize             len);
gboolean        _afork_wire_end               (GByteArray       *out,
                                               gsize             start);
void            _afork_wire_put_empty         (GByteArray       *out,
                                               guint8            command);

guint32         _afork_wire_read_u32          (const guint8     *data);
AforkWireStatus _afork_wire_parse_header      (const guint8     *data,
                                               gsize             len,
                                               gboolean          reply,
                                               guint8           *command,
                                               guint32          *payload_len,
                                               GError          **error);
gboolean        _afork_wire_parse_strings     (const guint8     *payload,
                                               gsize             len,
                                               GArray           *strings,
                                               GError          **error);
gboolean        _afork_wire_parse_reply       (guint8            command,
                                               const guint8     *payload,
                                               gsize             len,
                                               GPid             *pid,
                                               GError          **error);
void            _afork_wire_put_error_reply   (GByteArray       *out,
                                               const GError     *error);
void            _afork_wire_put_ok_reply      (GByteArray       *out,
                                               GPid              pid);
void            _afork_wire_put_sandbox       (GByteArray       *out,
                                               const AforkWireSandbox *sandbox);
gboolean        _afork_wire_parse_sandbox     (const guint8     *payload,
                                               gsize             len,
                                               AforkWireSandbox *sandbox,
                                               GError          **error);
void            _afork_wire_sandbox_clear     (AforkWireSandbox *sandbox);

/* The `x` command, decoded: what the exec built-in needs. Each of
 * @stdio's letters says where standard input, output and error come
 * from: 'f' a descriptor sent before the command (the last ones, in
 * order, before the status channel), 's' the socket, 'i' the server's
 * own. */
typedef struct
{
  char    stdio[4];   /* NUL-terminated */
  char   *cwd;        /* NULL to keep the server's */
  char  **argv;       /* at least the program */
  char  **envp;       /* NULL to keep the server's */
} AforkWireExec;

gboolean        _afork_wire_put_exec          (GByteArray          *out,
                                               const char           stdio[3],
                                               const char          *cwd,
                                               const char * const  *argv,
                                               const char * const  *envp);
gboolean        _afork_wire_parse_exec        (const guint8        *payload,
                                               gsize                len,
                                               AforkWireExec       *exec,
                                               GError             **error);
void            _afork_wire_exec_clear        (AforkWireExec       *exec);

/* The exec status channel: a child that cannot execute its program
 * writes 8 bytes, the step that failed then the errno, each a
 * little-endian u32, and exits with 127. End of file with nothing read
 * means the program started. */
#define AFORK_WIRE_EXEC_STATUS_SIZE 8

typedef enum
{
  AFORK_WIRE_EXEC_STEP_EXEC  = 0,   /* execvp() or execvpe() */
  AFORK_WIRE_EXEC_STEP_CHDIR = 1,   /* chdir() to the working directory */
  AFORK_WIRE_EXEC_STEP_STDIO = 2,   /* setting up standard descriptors */
} AforkWireExecStep;

/* Pool frames: a GVariant travels as its type string and its serialised
 * form; descriptors as SCM_RIGHTS on the frame's bytes, counted by n_fds. */

/* A value of a pool frame as it came: its type string (checked: one
 * definite type) and its serialised form. */
typedef struct
{
  char   *type;
  GBytes *data;
} AforkWireValue;

/* One decoded pool frame; strings are NUL-terminated copies. */
typedef struct
{
  guint8    command;
  guint32   n_fds;      /* call, result and ring */
  guint32   ring_size;  /* ring */
  char     *function;   /* call */
  char     *name;       /* event */
  GVariant *value;      /* call, result, event: never floating */
  AforkWireValue raw;   /* … or that value, parsed lazily */
  guint32   code;       /* error */
  char     *domain;     /* error */
  char     *message;    /* error */
} AforkWirePoolFrame;

AforkWireStatus _afork_wire_parse_pool_header (const guint8       *data,
                                               gsize               len,
                                               gboolean            from_worker,
                                               guint8             *command,
                                               guint32            *payload_len,
                                               GError            **error);
gboolean        _afork_wire_parse_pool_frame  (guint8              command,
                                               const guint8       *payload,
                                               gsize               len,
                                               AforkWirePoolFrame *frame,
                                               GError            **error);
/* The same, leaving the value as it came (frame->raw). */
gboolean        _afork_wire_parse_pool_frame_full (guint8           command,
                                               const guint8       *payload,
                                               gsize               len,
                                               gboolean            lazy,
                                               AforkWirePoolFrame *frame,
                                               GError            **error);
/* The GVariant of a value parsed lazily (sunk), or NULL for none. */
GVariant       *_afork_wire_value_make        (const AforkWireValue *value);
void            _afork_wire_value_clear       (AforkWireValue     *value);
void            _afork_wire_pool_frame_clear  (AforkWirePoolFrame *frame);
gboolean        _afork_wire_put_pool_call     (GByteArray         *out,
                                               const char         *function,
                                               GVariant           *parameters,
                                               guint32             n_fds);
void            _afork_wire_put_pool_ring     (GByteArray         *out,
                                               guint32             ring_size);
gboolean        _afork_wire_put_pool_result   (GByteArray         *out,
                                               GVariant           *value,
                                               guint32             n_fds);
void            _afork_wire_put_pool_error    (GByteArray         *out,
                                               const GError       *error);
gboolean        _afork_wire_put_pool_event    (GByteArray         *out,
                                               const char         *name,
                                               GVariant           *value);


G_END_DECLS
