/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for the server's command loop (afork-server.c), fed
 * arbitrary byte streams and descriptors through a real socketpair.
 *
 * The loop ends its process on bad input, by design, so each input runs in
 * a forked child: the parent feeds it, closes its end, and waits. The
 * coverage the child (and any process it forks) reached is handed back:
 * the libFuzzer build renames _exit() to afork_fuzz_exit() (see
 * meson.build), which ORs the process's coverage counters into memory
 * shared with the fuzzer, and the fuzzer adds them to its own after the
 * input. The
 * child must exit with a status of its own (0, 1, 2 — with a message on
 * standard error —, or 127 after a failed exec); a death by signal, a
 * sanitizer report or a child still running after HANG_LIMIT_S seconds is
 * a failure, and aborts.
 *
 * An input is a run of records, each one sendmsg():
 *   u8 control   bits 0-1: descriptors to attach (0-3)
 *                bits 2-3: their kind: 0 a socketpair end (the other end
 *                stays here), 1 /dev/null, 2 a pipe's write end, 3 a
 *                pipe's read end
 *   u16 length   little-endian, then that many bytes (cut at the end of
 *                the input)
 *
 * The server executes what its owner names, by design: an input that
 * would load a module, call or run a function or execute a program
 * outside this sandbox (names starting with "afork-fuzz-" or
 * "afork_fuzz_", or refused for a NUL byte) is skipped, and so is one
 * with a valid sandbox command.
 *
 * AFORK_FUZZ_VERBOSE=1 shows the server's standard error. */
#include "afork-server-private.h"

#include <elf.h>
#include <errno.h>
#include <gio/gio.h>
#include <link.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "afork-wire-private.h"

#define HANG_LIMIT_S 20

static pid_t fuzzer_pid;
#define MAX_HELD     512

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv);

/* Provided by the sanitizers' runtime, when there is one. */
void __sanitizer_set_death_callback (void (*callback) (void)) __attribute__((weak));

#if defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define FUZZ_ASAN 1
# endif
#endif
#if defined(__SANITIZE_ADDRESS__)
# define FUZZ_ASAN 1
#endif

/* Sanitizer reports in the child must end it with a signal, so that no
 * exit status of the server's own is mistaken for one. */
const char *__asan_default_options (void);
const char *
__asan_default_options (void)
{
  return "abort_on_error=1:detect_leaks=0:handle_abort=0";
}

const char *__ubsan_default_options (void);
const char *
__ubsan_default_options (void)
{
  return "abort_on_error=1:halt_on_error=1:print_stacktrace=1";
}

/* Functions the server may call or run. */
#define EXPORT __attribute__((visibility("default"), used))

EXPORT gboolean afork_fuzz_call_ok (AforkChild *, const char * const *, GError **);
gboolean
afork_fuzz_call_ok (G_GNUC_UNUSED AforkChild *child,
                    G_GNUC_UNUSED const char * const *args,
                    G_GNUC_UNUSED GError **error)
{
  return TRUE;
}

EXPORT gboolean afork_fuzz_call_fail (AforkChild *, const char * const *, GError **);
gboolean
afork_fuzz_call_fail (G_GNUC_UNUSED AforkChild *child,
                      const char * const *args,
                      GError **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "failure asked for with %u arguments",
               g_strv_length ((char **) args));
  return FALSE;
}

/* Reads every pending argument, as a run function would. */
EXPORT gboolean afork_fuzz_call_args (AforkChild *, const char * const *, GError **);
gboolean
afork_fuzz_call_args (AforkChild *child,
                      G_GNUC_UNUSED const char * const *args,
                      G_GNUC_UNUSED GError **error)
{
  guint n = afork_child_get_n_args (child);
  guint sum = 0;

  for (guint i = 0; i < n; i++)
    {
      if (afork_child_arg_is_fd (child, i))
        sum += afork_child_peek_fd (child, i) >= 0;
      else
        {
          gsize len = 0;
          const char *arg = afork_child_get_arg (child, i, &len);

          sum += arg[len] == '\0';
        }
    }

  return sum <= n;
}

EXPORT void afork_fuzz_run (AforkChild *);
void
afork_fuzz_run (AforkChild *child)
{
  afork_fuzz_call_args (child, NULL, NULL);
}

/* The sandbox */

static gboolean
allowed_name (const AforkWireString *s,
              const char            *prefix)
{
  gsize plen = strlen (prefix);

  if (memchr (s->data, '\0', s->len) != NULL)
    return TRUE;   /* refused by the server before any use */

  return s->len >= plen && memcmp (s->data, prefix, plen) == 0 &&
         memchr (s->data, '/', s->len) == NULL;
}

static gboolean
sandboxed (const guint8 *stream,
           gsize         size)
{
  gsize pos = 0;

  while (pos < size)
    {
      g_autoptr(GArray) strings = g_array_new (FALSE, FALSE, sizeof (AforkWireString));
      const guint8 *payload;
      guint8 command = 0;
      guint32 plen = 0;

      if (_afork_wire_parse_header (stream + pos, size - pos, FALSE, &command, &plen, NULL) !=
          AFORK_WIRE_STATUS_OK || size - pos - AFORK_WIRE_HEADER_SIZE < plen)
        return TRUE;   /* the server stops here, or waits */
      payload = stream + pos + AFORK_WIRE_HEADER_SIZE;
      pos += AFORK_WIRE_HEADER_SIZE + plen;

      /* A valid sandbox would confine the fuzzer's child (a memory limit
       * below what AddressSanitizer maps kills it): only malformed ones,
       * which end the server, are fed. */
      if (command == AFORK_WIRE_SANDBOX)
        {
          AforkWireSandbox sandbox;

          if (!_afork_wire_parse_sandbox (payload, plen, &sandbox, NULL))
            return TRUE;   /* the server dies here */
          _afork_wire_sandbox_clear (&sandbox);
          return FALSE;
        }

      if (command != AFORK_WIRE_REQUIRE && command != AFORK_WIRE_CALL &&
          command != AFORK_WIRE_RUN && command != AFORK_WIRE_EXEC)
        continue;
      if (!_afork_wire_parse_strings (payload, plen, strings, NULL))
        return TRUE;   /* the server dies here */

      if (command == AFORK_WIRE_REQUIRE)
        {
          for (guint i = 0; i < strings->len; i++)
            if (!allowed_name (&g_array_index (strings, AforkWireString, i), "afork-fuzz-"))
              return FALSE;
        }
      else if (command == AFORK_WIRE_EXEC)
        {
          if (strings->len >= 5 &&
              !allowed_name (&g_array_index (strings, AforkWireString, 4), "afork-fuzz-"))
            return FALSE;
        }
      else if (strings->len > 0 &&
               !allowed_name (&g_array_index (strings, AforkWireString, 0), "afork_fuzz_"))
        return FALSE;
    }

  return TRUE;
}

/* Records */

typedef struct
{
  guint         n_fds;
  guint         fd_kind;
  const guint8 *data;
  gsize         len;
} Record;

static GArray *
split_records (const guint8 *input,
               gsize         size,
               GByteArray   *stream)
{
  GArray *records = g_array_new (FALSE, FALSE, sizeof (Record));
  gsize pos = 0;

  while (pos + 3 <= size)
    {
      Record r;

      r.n_fds = input[pos] & 3;
      r.fd_kind = (input[pos] >> 2) & 3;
      r.len = input[pos + 1] | ((gsize) input[pos + 2] << 8);
      pos += 3;
      r.len = MIN (r.len, size - pos);
      r.data = input + pos;
      pos += r.len;
      g_array_append_val (records, r);
      g_byte_array_append (stream, r.data, (guint) r.len);
    }

  return records;
}

/* Descriptors to send; the ends that stay here go to @held. */
static guint
make_fds (const Record *r,
          int          *fds,
          int          *held,
          guint        *n_held)
{
  guint n = 0;

  for (guint i = 0; i < r->n_fds && *n_held + 1 < MAX_HELD; i++)
    {
      int pair[2];

      switch (r->fd_kind)
        {
        case 0:
          if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
            abort ();
          held[(*n_held)++] = pair[0];
          fds[n++] = pair[1];
          break;
        case 1:
          fds[n] = open ("/dev/null", O_RDWR | O_CLOEXEC);
          if (fds[n++] < 0)
            abort ();
          break;
        default:
          if (pipe2 (pair, O_CLOEXEC) != 0)
            abort ();
          held[(*n_held)++] = pair[r->fd_kind == 2 ? 0 : 1];
          fds[n++] = pair[r->fd_kind == 2 ? 1 : 0];
          break;
        }
    }

  return n;
}

static gboolean
send_record (int           sock,
             const Record *r,
             int          *held,
             guint        *n_held,
             gint64        deadline)
{
  int fds[3];
  guint n_fds = r->len > 0 ? make_fds (r, fds, held, n_held) : 0;
  gsize sent = 0;
  gboolean ok = TRUE;

  while (ok && sent < r->len)
    {
      gssize res = _afork_sendmsg_fds (sock, r->data + sent, r->len - sent,
                                       fds, sent == 0 ? n_fds : 0, MSG_DONTWAIT);

      if (res >= 0)
        sent += res;
      else if (errno == EAGAIN || errno == EINTR)
        {
          struct pollfd pfd = { sock, POLLOUT, 0 };

          if (g_get_monotonic_time () > deadline)
            ok = FALSE;
          else
            poll (&pfd, 1, 10);
        }
      else
        ok = FALSE;   /* the server is gone: nothing more to feed */
    }

  for (guint i = 0; i < n_fds; i++)
    close (fds[i]);

  return ok;
}

static void
drain (int         fd,
       GByteArray *into)
{
  guint8 buf[4096];
  gssize res;

  while ((res = read (fd, buf, sizeof buf)) > 0)
    if (into != NULL && into->len < 65536)
      g_byte_array_append (into, buf, (guint) res);
}

G_GNUC_NORETURN static void
serve_in_child (int sock,
                int err_pipe)
{
  static const int deadly[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM, SIGTERM, SIGINT,
                                SIGUSR1, SIGUSR2, SIGXFSZ };

  /* The fuzzer's crash handling belongs to the fuzzer process. */
  if (__sanitizer_set_death_callback != NULL)
    __sanitizer_set_death_callback (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (deadly); i++)
    signal (deadly[i], SIG_DFL);

#ifndef FUZZ_ASAN
  {
    /* No allocation may follow a length that was only announced. */
    struct rlimit data = { 256 * 1024 * 1024, 256 * 1024 * 1024 };
    setrlimit (RLIMIT_DATA, &data);
  }
#endif

  prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  dup2 (err_pipe, STDERR_FILENO);
  g_unsetenv ("AFORK_MODULE_PATH");

  _afork_server_serve (sock, getppid ());
}

/* The inline 8-bit counters of -fsanitize-coverage: the section
 * __sancov_cntrs of this program, found in its section headers (naming
 * the linker's __start_ symbol would change how the instrumentation
 * registers them). None in builds without it. */
static guint8 *counters;
static gsize   n_counters;

static int
program_base_cb (struct dl_phdr_info *info,
                 G_GNUC_UNUSED size_t size,
                 void                *data)
{
  *(guintptr *) data = (guintptr) info->dlpi_addr;
  return 1;   /* the first object is the program */
}

static void
find_counters (void)
{
  g_autofree char *elf = NULL;
  gsize len = 0;
  const ElfW(Ehdr) *eh;
  const ElfW(Shdr) *sh;
  const char *names;
  guintptr base = 0;

  if (!g_file_get_contents ("/proc/self/exe", &elf, &len, NULL) || len < sizeof *eh)
    return;
  eh = (const ElfW(Ehdr) *) elf;
  if (eh->e_shoff == 0 || eh->e_shstrndx >= eh->e_shnum ||
      eh->e_shoff + (gsize) eh->e_shnum * sizeof *sh > len)
    return;
  sh = (const ElfW(Shdr) *) (elf + eh->e_shoff);
  if (sh[eh->e_shstrndx].sh_offset >= len)
    return;
  names = elf + sh[eh->e_shstrndx].sh_offset;

  dl_iterate_phdr (program_base_cb, &base);
  for (guint i = 0; i < eh->e_shnum; i++)
    if (sh[i].sh_name < len - sh[eh->e_shstrndx].sh_offset &&
        g_str_equal (names + sh[i].sh_name, "__sancov_cntrs"))
      {
        counters = (guint8 *) (base + sh[i].sh_addr);
        n_counters = sh[i].sh_size;
      }
}

/* Counters of the processes forked for an input, shared with them. */
static guint8 *child_counters;

static void
setup_child_counters (void)
{
  find_counters ();
  if (n_counters == 0)
    return;

  child_counters = mmap (NULL, n_counters, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (child_counters == MAP_FAILED)
    abort ();
}

/* Every process of the server ends here (in the libFuzzer build). */
void afork_fuzz_exit (int status) G_GNUC_NORETURN;
void
afork_fuzz_exit (int status)
{
  if (child_counters != NULL && getpid () != fuzzer_pid)
    for (gsize i = 0; i < n_counters; i++)
      if (counters[i] != 0)
        child_counters[i] |= counters[i];

  syscall (SYS_exit_group, status);
  for (;;)
    ;
}

/* After an input: what its processes covered counts for the fuzzer. */
static void
collect_child_counters (void)
{
  for (gsize i = 0; child_counters != NULL && i < n_counters; i++)
    if (child_counters[i] != 0)
      {
        counters[i] |= child_counters[i];
        child_counters[i] = 0;
      }
}

int
LLVMFuzzerInitialize (G_GNUC_UNUSED int    *argc,
                      G_GNUC_UNUSED char ***argv)
{
  fuzzer_pid = getpid ();
  setup_child_counters ();

  /* Forks of forks (`f`) are orphaned when their server exits: adopt and
   * reap them here rather than leave them to init. */
  prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  signal (SIGPIPE, SIG_IGN);

  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *input,
                        size_t         size)
{
  g_autoptr(GByteArray) stream = g_byte_array_new ();
  g_autoptr(GByteArray) err = g_byte_array_new ();
  g_autoptr(GArray) records = split_records (input, size, stream);
  gint64 deadline = g_get_monotonic_time () + HANG_LIMIT_S * G_USEC_PER_SEC;
  gboolean verbose = g_strcmp0 (g_getenv ("AFORK_FUZZ_VERBOSE"), "1") == 0;
  int held[MAX_HELD];
  guint n_held = 0;
  int sv[2], ep[2];
  int status = 0;
  pid_t pid, done = 0;

  if (!sandboxed (stream->data, stream->len))
    return -1;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
      pipe2 (ep, O_CLOEXEC | O_NONBLOCK) != 0)
    abort ();

  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    abort ();
  if (pid == 0)
    {
      close (sv[0]);
      close (ep[0]);
      serve_in_child (sv[1], ep[1]);
    }
  close (sv[1]);
  close (ep[1]);

  for (guint i = 0; i < records->len; i++)
    if (!send_record (sv[0], &g_array_index (records, Record, i), held, &n_held, deadline))
      break;

  /* End of the stream, and of every socket and pipe handed over. */
  shutdown (sv[0], SHUT_WR);
  for (guint i = 0; i < n_held; i++)
    close (held[i]);
  fcntl (sv[0], F_SETFL, O_NONBLOCK);

  while ((done = waitpid (pid, &status, WNOHANG)) == 0 && g_get_monotonic_time () < deadline)
    {
      struct pollfd pfds[2] = { { sv[0], POLLIN, 0 }, { ep[0], POLLIN, 0 } };

      poll (pfds, 2, 5);
      drain (sv[0], NULL);
      drain (ep[0], err);
    }
  drain (ep[0], err);
  close (sv[0]);
  close (ep[0]);
  collect_child_counters ();

  if (verbose && err->len > 0)
    fprintf (stderr, "%.*s", (int) err->len, (const char *) err->data);

  if (done != pid)
    {
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
      fprintf (stderr, "afork-fuzz: the server did not exit within %d s\n", HANG_LIMIT_S);
      abort ();
    }

  if (WIFSIGNALED (status))
    {
      fprintf (stderr, "afork-fuzz: the server died of signal %d (%s)\n%.*s",
               WTERMSIG (status), g_strsignal (WTERMSIG (status)),
               (int) err->len, (const char *) err->data);
      abort ();
    }

  switch (WEXITSTATUS (status))
    {
    case 0:
    case 1:
    case 127:
      break;
    case 2:
      /* A refusal says why. */
      if (g_strstr_len ((const char *) err->data, err->len, "afork-server: ") == NULL)
        {
          fprintf (stderr, "afork-fuzz: the server exited with 2 without a message\n");
          abort ();
        }
      break;
    default:
      fprintf (stderr, "afork-fuzz: the server exited with %d\n%.*s", WEXITSTATUS (status),
               (int) err->len, (const char *) err->data);
      abort ();
    }

  /* Reap the forks of forks that have exited by now. */
  while (waitpid (-1, NULL, WNOHANG) > 0)
    ;
  collect_child_counters ();

  return 0;
}
