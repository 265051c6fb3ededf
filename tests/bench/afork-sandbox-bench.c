/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* afork-sandbox-bench: what the walls of a sandboxed template cost per
 * process, in one run.
 *
 *   afork-sandbox-bench [--quick] [--tap] [--seconds S] [--reps N]
 *
 * Rows, each in processes per second, the best of N rounds of S seconds
 * per row (the two afork rows measured in alternation, one process each
 * in turn, by their median time per process):
 *   plain      forks of a template that loaded the probe module, + run of
 *              a function that writes 4 bytes and returns; the parent
 *              reads to end of file
 *   sandboxed  the same, the template confined by an AforkSandbox (no
 *              path, no network, no exec, memory and CPU limits)
 *   bwrap      bubblewrap per process, with the arguments of GNOME's
 *              thumbnail factory (gnome-desktop-thumbnail-script.c) and a
 *              seccomp filter, running /usr/bin/true, where bwrap works
 * and the ratio sandboxed / plain (target: at least 0.9, the walls being
 * built once per template, not per process).
 *
 * --tap prints a TAP plan with one line per row (the quick pass of the
 * test suite: every row is measured). */
#include <afork/afork.h>

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_LIBSECCOMP
# include <seccomp.h>
#endif

extern char **environ;

#define PROBE_MODULE "afork-sandbox-module"
#define PROBE_RUN    "sandbox_probe_run"

static gboolean tap;
static guint    tap_n;

static gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);

  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

static void
report (gboolean    ok,
        const char *format,
        ...) G_GNUC_PRINTF (2, 3);

static void
report (gboolean    ok,
        const char *format,
        ...)
{
  g_autofree char *text = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);

  if (tap)
    printf ("%s %u - %s\n", ok ? "ok" : "not ok", ++tap_n, text);
  else
    printf ("%s\n", text);
  fflush (stdout);
}

/* afork rows */

static AforkProcess *
make_template (gboolean sandboxed)
{
  g_autoptr(GError) error = NULL;
  AforkProcess *tmpl = afork_process_new (&error);

  if (tmpl == NULL)
    g_error ("afork_process_new: %s", error->message);
  afork_process_require (tmpl, PROBE_MODULE);

  if (sandboxed)
    {
      g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();

      afork_sandbox_set_memory_limit (sandbox, G_GUINT64_CONSTANT (1) << 30);
      afork_sandbox_set_cpu_limit (sandbox, 20);
      afork_process_sandbox (tmpl, sandbox);
    }

  return tmpl;
}

/* One process: fork, run, read to end of file. */
static gboolean
one_fork (AforkProcess  *tmpl,
          GError       **error)
{
  g_autoptr(AforkProcess) child = afork_process_fork (tmpl);
  g_autoptr(GSocketConnection) connection = NULL;
  GInputStream *in;
  char buf[64];
  gssize n;
  gsize total = 0;

  connection = afork_process_run (child, PROBE_RUN, NULL, error);
  if (connection == NULL)
    return FALSE;

  in = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  while ((n = g_input_stream_read (in, buf, sizeof buf, NULL, error)) > 0)
    total += (gsize) n;
  if (n < 0)
    return FALSE;
  if (total != 4)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "read %" G_GSIZE_FORMAT " bytes, not 4", total);
      return FALSE;
    }

  return TRUE;
}

/* The machine is shared and its load drifts: the two templates are
 * measured in alternation, one process each in turn, and compared by
 * their median time per process. */
static int
cmp_double (gconstpointer a,
            gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static double
median_rate (GArray *times)
{
  g_array_sort (times, cmp_double);

  return 1.0 / g_array_index (times, double, times->len / 2);
}

static void
measure_afork_pair (AforkProcess *plain,
                    AforkProcess *sandboxed,
                    double        seconds,
                    double       *plain_rate,
                    double       *sandboxed_rate)
{
  g_autoptr(GArray) plain_times = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) sandboxed_times = g_array_new (FALSE, FALSE, sizeof (double));
  gint64 end = now_ns () + (gint64) (seconds * 2e9);
  guint round = 0;

  do
    {
      /* Which goes first alternates too. */
      for (guint k = 0; k < 2; k++, round++)
        {
          AforkProcess *tmpl = (round + round / 2) % 2 == 0 ? plain : sandboxed;
          g_autoptr(GError) error = NULL;
          gint64 start = now_ns ();
          double t;

          if (!one_fork (tmpl, &error))
            g_error ("fork + run: %s", error->message);
          t = (now_ns () - start) / 1e9;
          g_array_append_val (tmpl == plain ? plain_times : sandboxed_times, t);
        }
    }
  while (now_ns () < end || plain_times->len < 3);

  *plain_rate = median_rate (plain_times);
  *sandboxed_rate = median_rate (sandboxed_times);
}

/* bwrap row */

static gboolean
path_is_usrmerged (const char *dir)
{
  g_autofree char *target = g_strdup_printf ("/usr%s", dir);
  struct stat a, b;

  return stat (dir, &a) == 0 && stat (target, &b) == 0 &&
         a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* A seccomp program for bwrap --seccomp, in a memfd: a deny-list like the
 * thumbnail factory's (Flatpak's), exported as BPF. */
static int
seccomp_memfd (void)
{
#ifdef HAVE_LIBSECCOMP
  static const char *denied[] = {
    "ptrace", "mount", "umount2", "pivot_root", "unshare", "setns",
    "kexec_load", "bpf", "perf_event_open", "add_key", "keyctl",
    "request_key", "syslog", "uselib", "acct", "quotactl", "userfaultfd",
  };
  scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ALLOW);
  int fd = memfd_create ("afork-bench-seccomp", 0);

  if (ctx == NULL || fd < 0)
    return -1;
  for (gsize i = 0; i < G_N_ELEMENTS (denied); i++)
    {
      int nr = seccomp_syscall_resolve_name (denied[i]);

      if (nr != __NR_SCMP_ERROR)
        seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), nr, 0);
    }
  seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EAFNOSUPPORT), SCMP_SYS (socket), 1,
                    SCMP_A0 (SCMP_CMP_GT, 1 /* AF_UNIX */));
  if (seccomp_export_bpf (ctx, fd) != 0)
    {
      close (fd);
      fd = -1;
    }
  seccomp_release (ctx);

  return fd;
#else
  return -1;
#endif
}

typedef struct
{
  GPtrArray *argv;
  int        seccomp_fd;
  char      *outdir;
  char      *infile;
} Bwrap;

static void
bwrap_add (Bwrap      *b,
           const char *first,
           ...)
{
  va_list args;

  va_start (args, first);
  for (const char *s = first; s != NULL; s = va_arg (args, const char *))
    g_ptr_array_add (b->argv, g_strdup (s));
  va_end (args);
}

static gboolean
bwrap_setup (Bwrap *b)
{
  g_autofree char *bwrap = g_find_program_in_path ("bwrap");
  const char *usrmerged_dirs[] = { "/bin", "/lib64", "/lib", "/sbin" };
  g_autofree char *seccomp_str = NULL;
  g_autoptr(GError) error = NULL;

  if (bwrap == NULL)
    return FALSE;

  b->outdir = g_dir_make_tmp ("afork-bench-bwrap-XXXXXX", &error);
  if (b->outdir == NULL)
    return FALSE;
  b->infile = g_build_filename (b->outdir, "input.png", NULL);
  g_file_set_contents (b->infile, "not really a png", -1, NULL);

  b->argv = g_ptr_array_new_with_free_func (g_free);
  bwrap_add (b, bwrap, "--ro-bind", "/usr", "/usr",
             "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache", NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (usrmerged_dirs); i++)
    {
      g_autofree char *target = g_strdup_printf ("/usr%s", usrmerged_dirs[i]);

      if (!g_file_test (usrmerged_dirs[i], G_FILE_TEST_EXISTS))
        continue;
      if (path_is_usrmerged (usrmerged_dirs[i]))
        bwrap_add (b, "--symlink", target, usrmerged_dirs[i], NULL);
      else
        bwrap_add (b, "--ro-bind", usrmerged_dirs[i], usrmerged_dirs[i], NULL);
    }
  bwrap_add (b, "--proc", "/proc", "--dev", "/dev", "--chdir", "/",
             "--setenv", "GIO_USE_VFS", "local", "--unshare-all", "--die-with-parent",
             "--bind", b->outdir, "/tmp",
             "--ro-bind", b->infile, "/tmp/gnome-desktop-file-to-thumbnail.png", NULL);

  b->seccomp_fd = seccomp_memfd ();
  if (b->seccomp_fd >= 0)
    {
      seccomp_str = g_strdup_printf ("%d", b->seccomp_fd);
      bwrap_add (b, "--seccomp", seccomp_str, NULL);
    }
  bwrap_add (b, "/usr/bin/true", NULL);
  g_ptr_array_add (b->argv, NULL);

  return TRUE;
}

static gboolean
bwrap_once (Bwrap *b)
{
  pid_t pid;
  int status;

  /* bwrap reads the program to its end: start each one at the beginning. */
  if (b->seccomp_fd >= 0)
    lseek (b->seccomp_fd, 0, SEEK_SET);

  if (posix_spawn (&pid, b->argv->pdata[0], NULL, NULL, (char **) b->argv->pdata, environ) != 0)
    return FALSE;
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return FALSE;

  return WIFEXITED (status) && WEXITSTATUS (status) == 0;
}

static double
measure_bwrap (Bwrap  *b,
               double  seconds)
{
  gint64 start = now_ns ();
  gint64 end = start + (gint64) (seconds * 1e9);
  guint n = 0;

  do
    {
      if (!bwrap_once (b))
        return -1;
      n++;
    }
  while (now_ns () < end || n < 3);

  return n / ((now_ns () - start) / 1e9);
}

static void
bwrap_clear (Bwrap *b)
{
  if (b->infile != NULL)
    g_unlink (b->infile);
  if (b->outdir != NULL)
    g_rmdir (b->outdir);
  g_clear_pointer (&b->infile, g_free);
  g_clear_pointer (&b->outdir, g_free);
  g_clear_pointer (&b->argv, g_ptr_array_unref);
  if (b->seccomp_fd >= 0)
    close (b->seccomp_fd);
  b->seccomp_fd = -1;
}

int
main (int    argc,
      char **argv)
{
  gboolean quick = FALSE;
  double seconds = 3;
  int reps = 5;
  GOptionEntry entries[] = {
    { "quick", 0, 0, G_OPTION_ARG_NONE, &quick, "A short pass: every row is measured", NULL },
    { "tap", 0, 0, G_OPTION_ARG_NONE, &tap, "Print TAP", NULL },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds, "Seconds per round", "S" },
    { "reps", 0, 0, G_OPTION_ARG_INT, &reps, "Rounds per row", "N" },
    { NULL, 0, 0, 0, NULL, NULL, NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) plain = NULL;
  g_autoptr(AforkProcess) sandboxed = NULL;
  double best_plain = 0, best_sandboxed = 0, best_bwrap = 0;
  Bwrap b = { NULL, -1, NULL, NULL };
  gboolean have_bwrap;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  if (quick)
    {
      seconds = 0.2;
      reps = 1;
    }

  if (tap)
    printf ("1..4\n");
  else
    printf ("afork-sandbox-bench: %d rounds of %.1f s per row, best round\n"
            "kernel Landlock ABI %u\n", reps, seconds,
            afork_sandbox_get_kernel_landlock_abi ());

  plain = make_template (FALSE);
  sandboxed = make_template (TRUE);
  /* Warm up both templates (and check that the sandbox holds). */
  if (!one_fork (plain, &error) || !one_fork (sandboxed, &error))
    {
      report (FALSE, "warm-up: %s", error->message);
      return 1;
    }

  have_bwrap = bwrap_setup (&b) && bwrap_once (&b);

  for (int rep = 0; rep < reps; rep++)
    {
      double p, q;

      measure_afork_pair (plain, sandboxed, seconds, &p, &q);
      best_plain = MAX (best_plain, p);
      best_sandboxed = MAX (best_sandboxed, q);
      if (have_bwrap)
        best_bwrap = MAX (best_bwrap, measure_bwrap (&b, seconds));
    }

  report (best_plain > 0, "fork + run, plain template:     %8.0f/s", best_plain);
  report (best_sandboxed > 0, "fork + run, sandboxed template: %8.0f/s", best_sandboxed);
  report (best_plain > 0, "ratio sandboxed / plain:        %8.2f (target >= 0.9)",
          best_sandboxed / best_plain);
  if (have_bwrap)
    report (best_bwrap > 0, "bwrap per process (thumbnail factory's arguments%s): %8.0f/s, %.2f of sandboxed forks",
            b.seccomp_fd >= 0 ? ", seccomp" : "", best_bwrap, best_bwrap / best_sandboxed);
  else if (tap)
    printf ("ok %u - bwrap # SKIP bwrap does not work here\n", ++tap_n);
  else
    printf ("bwrap: not available or refused here (no user namespaces?)\n");

  bwrap_clear (&b);

  return 0;
}
