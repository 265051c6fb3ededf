/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* No descriptor leaks: a descriptor the parent opened without
 * close-on-exec reaches no server and no child, and the parent's count of
 * open descriptors and its memory stay the same across many processes.
 *
 * AFORK_TEST_SOAK_COUNT sets the number of processes of the soak test
 * (default 2000, 1000 under AddressSanitizer; the long form is 100000:
 * `AFORK_TEST_SOAK_COUNT=100000 meson test -C _build fd-leaks --timeout-multiplier 20`).
 *
 * Forks of the calling program (afork_early_init(), fork-self) are not
 * covered by the first test: like any fork, they share the program's
 * descriptors on purpose. */
#include "rel-util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

/* A pipe opened without O_CLOEXEC before anything else. */
static int leak_pipe[2] = { -1, -1 };
static char *leak_targets[2];

static void
assert_not_inherited (GPid        pid,
                      const char *what)
{
  g_test_message ("checking %s (pid %d): %u descriptors", what, (int) pid, rel_count_fds (pid));
  for (guint i = 0; i < 2; i++)
    if (rel_proc_has_fd_target (pid, leak_targets[i]))
      g_error ("%s (pid %d) holds the parent's %s", what, (int) pid, leak_targets[i]);
}

static void
test_inherited (gconstpointer data)
{
  RelKind *kind = (RelKind *) data;
  g_autoptr(AforkProcess) preparing = rel_make (kind);
  g_autoptr(AforkProcess) running = rel_make (kind);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GPid pid, ppid = 0;

  /* The check can fail: this process holds them. */
  g_assert_true (rel_proc_has_fd_target (getpid (), leak_targets[0]));

  assert_not_inherited (rel_report_pid (preparing), "a process in preparation");

  connection = afork_process_run (running, "rel_run_echo", NULL, &error);
  g_assert_no_error (error);
  pid = rel_read_pid_line (connection);
  assert_not_inherited (pid, "a running process");

  g_assert_true (afork_test_proc_stat (pid, NULL, &ppid, NULL));
  if (ppid != getpid ())
    assert_not_inherited (ppid, "its template");

  if (g_str_equal (kind->name, "new"))
    assert_not_inherited (rel_default_template_pid (), "the default template");
}

/* Descriptor number → what it points to ("socket:[123]"), of @pid. */
static GHashTable *
fd_targets (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", (int) pid);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  GHashTable *targets = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *link = g_build_filename (path, name, NULL);
      char *dest = g_file_read_link (link, NULL);

      if (dest != NULL)
        g_hash_table_insert (targets, GINT_TO_POINTER (atoi (name)), dest);
    }

  return targets;
}

static gboolean
holds_target (GHashTable *targets,
              const char *target)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, targets);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (g_str_equal (value, target))
      return TRUE;

  return FALSE;
}

/* Asserts that the descriptors of @pid above standard input, output and
 * error are exactly one socket that @template does not hold (its own),
 * plus @extra (targets, NULL-terminated): no template socket, no
 * sibling's socket, no status pipe. */
static void
assert_exact_fds (GPid                pid,
                  GPid                template,
                  const char * const *extra,
                  const char         *what)
{
  g_autoptr(GHashTable) mine = fd_targets (pid);
  g_autoptr(GHashTable) theirs = fd_targets (template);
  g_autoptr(GString) listing = g_string_new (NULL);
  g_autoptr(GPtrArray) expected = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key, value;
  guint sockets = 0;

  for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add (expected, (gpointer) extra[i]);

  g_hash_table_iter_init (&iter, mine);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_string_append_printf (listing, " %d->%s", GPOINTER_TO_INT (key), (char *) value);
  g_test_message ("%s (pid %d):%s", what, (int) pid, listing->str);

  g_hash_table_iter_init (&iter, mine);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const char *target = value;
      guint index;

      if (GPOINTER_TO_INT (key) <= 2)
        continue;
      if (g_ptr_array_find_with_equal_func (expected, target, g_str_equal, &index))
        {
          g_ptr_array_remove_index (expected, index);
          continue;
        }
      if (g_str_has_prefix (target, "socket:") && sockets == 0)
        {
          g_assert_false (holds_target (theirs, target));
          sockets++;
          continue;
        }
      g_error ("%s (pid %d) holds descriptor %d → %s, which is not its own",
               what, (int) pid, GPOINTER_TO_INT (key), target);
    }

  g_assert_cmpuint (sockets, ==, 1);
  g_assert_cmpuint (expected->len, ==, 0);
}

/* A running child holds standard input, output and error, its socket and
 * what was sent to it: nothing else. */
static void
test_exact_run (gconstpointer data)
{
  RelKind *kind = (RelKind *) data;
  g_autoptr(AforkProcess) sibling = rel_make (kind);
  g_autoptr(AforkProcess) process = rel_make (kind);
  g_autoptr(GSocketConnection) sibling_connection = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *link = NULL;
  g_autofree char *sent = NULL;
  const char *extra[2] = { NULL, NULL };
  GPid pid, ppid = 0;
  int fds[2];

  /* A sibling running beside it. */
  sibling_connection = afork_process_run (sibling, "rel_run_echo", NULL, &error);
  g_assert_no_error (error);
  rel_read_pid_line (sibling_connection);

  afork_test_pipe (fds);
  link = g_strdup_printf ("/proc/self/fd/%d", fds[1]);
  sent = g_file_read_link (link, NULL);
  afork_process_send_fd (process, fds[1]);
  close (fds[1]);
  extra[0] = sent;

  connection = afork_process_run (process, "rel_run_echo", NULL, &error);
  g_assert_no_error (error);
  pid = rel_read_pid_line (connection);
  g_assert_true (afork_test_proc_stat (pid, NULL, &ppid, NULL));
  assert_exact_fds (pid, ppid, extra, "a running process");
  close (fds[0]);
}

/* The spare of a template holds standard input, output and error, the
 * socket it is handed its process on and the owner's pidfd: nothing of
 * the template's. */
static void
test_exact_spare (gconstpointer data)
{
  RelKind *kind = (RelKind *) data;
  g_autoptr(AforkProcess) process = rel_make (kind);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *title = NULL;
  const char *extra[] = { "anon_inode:[pidfd]", NULL };
  GPid pid, template = 0, spare = 0;

  connection = afork_process_run (process, "rel_run_echo", NULL, &error);
  g_assert_no_error (error);
  pid = rel_read_pid_line (connection);
  g_assert_true (afork_test_proc_stat (pid, NULL, &template, NULL));
  if (template == getpid ())
    {
      g_test_skip ("no template: an executed server");
      return;
    }

  /* The template forks its spare once idle. */
  title = g_strdup_printf ("afork %d spare", (int) getpid ());
  for (guint tries = 0; spare == 0 && tries < AFORK_TEST_WAIT_SECONDS * 100; tries++)
    {
      g_autoptr(GArray) pids = rel_proc_list ();

      for (guint i = 0; i < pids->len && spare == 0; i++)
        {
          GPid candidate = g_array_index (pids, GPid, i), ppid = 0;
          g_autofree char *cmdline = NULL;

          if (!afork_test_proc_stat (candidate, NULL, &ppid, NULL) || ppid != template)
            continue;
          cmdline = rel_proc_cmdline (candidate);
          if (cmdline != NULL && g_str_has_prefix (cmdline, title))
            spare = candidate;
        }
      if (spare == 0)
        g_usleep (10000);
    }
  g_assert_cmpint (spare, !=, 0);

  /* The template closes its copy of the spare's socket right after the
   * fork, which the spare may outrun: a copy it keeps for good is what
   * the check is about. */
  for (guint tries = 0; tries < AFORK_TEST_WAIT_SECONDS * 100; tries++)
    {
      g_autoptr(GHashTable) mine = fd_targets (spare);
      g_autoptr(GHashTable) theirs = fd_targets (template);
      GHashTableIter iter;
      gpointer value;
      gboolean shared = FALSE;

      g_hash_table_iter_init (&iter, mine);
      while (!shared && g_hash_table_iter_next (&iter, NULL, &value))
        shared = g_str_has_prefix (value, "socket:") && holds_target (theirs, value);
      if (!shared)
        break;
      g_usleep (10000);
    }
  assert_exact_fds (spare, template, extra, "a spare");
}

/* With every server and child alive, closing the write end makes the read
 * end see end of file: nobody else holds it. */
static void
test_pipe_eof (void)
{
  g_autoptr(GPtrArray) processes = g_ptr_array_new_with_free_func (g_object_unref);
  struct pollfd pfd = { leak_pipe[0], POLLIN, 0 };
  char c;

  for (guint k = 0; k < rel_n_kinds; k++)
    {
      AforkProcess *process = rel_make (&rel_kinds[k]);

      rel_report_pid (process);
      g_ptr_array_add (processes, process);
    }

  close (leak_pipe[1]);
  leak_pipe[1] = -1;
  g_assert_cmpint (poll (&pfd, 1, AFORK_TEST_WAIT_SECONDS * 1000), ==, 1);
  g_assert_cmpint (read (leak_pipe[0], &c, 1), ==, 0);
}

static void
one_process (RelKind *kind,
             guint    i)
{
  g_autoptr(AforkProcess) process = rel_make (kind);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  int fds[2];

  if (i % 10 == 9)
    {
      afork_process_send_arg (process, "forgotten");
      return;
    }

  /* A descriptor argument too: its copies must not stay in the parent. */
  afork_test_pipe (fds);
  afork_process_send_fd (process, fds[1]);
  close (fds[1]);
  connection = afork_process_run (process, "rel_run_pid", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (rel_read_pid_line (connection), ==, afork_process_get_pid (process));
  g_free (afork_test_read_connection (connection));
  close (fds[0]);
}

/* A template started at a low limit of open files keeps one descriptor
 * for each child it reports on: it still makes many more processes than
 * that limit, while each of them, and a program it executes, gets the
 * limit the template was started with. */
static void
test_template_limit (void)
{
  g_autoptr(GPtrArray) connections = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) processes = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(AforkProcess) template_process = NULL;
  g_autoptr(AforkExecOptions) options = NULL;
  g_autoptr(AforkProcess) exec_process = NULL;
  g_autoptr(GSocketConnection) exec_connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *module = rel_module_path ("afork-rel-module");
  g_autofree char *out = NULL;
  const char *argv[] = { "/bin/sh", "-c", "ulimit -Sn", NULL };
  struct rlimit start, limit;
  guint limit_seen;
  int out_pipe[2];
  int fd_seen;

  if (!g_test_subprocess ())
    {
      /* A fresh program, whose default template starts at the low limit. */
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
      return;
    }

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &start), ==, 0);
  if (start.rlim_max < 1024)
    {
      g_test_skip ("The hard limit of open files is below 1024");
      return;
    }

  limit = start;
  limit.rlim_cur = 64;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  template_process = afork_process_new (&error);
  g_assert_no_error (error);
  afork_process_require (template_process, module);
  limit.rlim_cur = MIN (start.rlim_max, 4096);
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);

  /* Asked for at once: the template holds many of their sockets at a
   * time, numbered far above 64. */
  for (guint i = 0; i < 150; i++)
    g_ptr_array_add (processes, afork_process_fork (template_process));
  for (guint i = 0; i < processes->len; i++)
    {
      GSocketConnection *connection = afork_process_run (processes->pdata[i], "rel_run_nofile",
                                                         NULL, &error);
      g_autofree char *line = NULL;

      g_assert_no_error (error);
      g_ptr_array_add (connections, connection);
      line = rel_read_line (connection, &error);
      g_assert_no_error (error);
      /* Its socket too is below the limit it has. */
      g_assert_true (sscanf (line, "nofile %u fd %d", &limit_seen, &fd_seen) == 2);
      g_assert_cmpuint (limit_seen, ==, 64);
      g_assert_cmpint (fd_seen, >=, 3);
      g_assert_cmpint (fd_seen, <, 64);
    }

  /* A limit a call function set is the process's own: it stays. */
  {
    g_autoptr(AforkProcess) process = afork_process_fork (template_process);
    const char *args[] = { "80", NULL };
    g_autoptr(GSocketConnection) connection = NULL;
    g_autofree char *line = NULL;

    afork_process_call (process, "rel_call_set_nofile", args);
    connection = afork_process_run (process, "rel_run_nofile", NULL, &error);
    g_assert_no_error (error);
    line = rel_read_line (connection, &error);
    g_assert_no_error (error);
    g_assert_true (g_str_has_prefix (line, "nofile 80 fd "));
  }

  g_assert_cmpint (pipe2 (out_pipe, O_CLOEXEC), ==, 0);
  options = afork_exec_options_new ();
  afork_exec_options_set_stdout_fd (options, out_pipe[1]);
  exec_process = afork_process_fork (template_process);
  exec_connection = afork_process_exec (exec_process, argv, options, NULL, &error);
  g_assert_no_error (error);
  close (out_pipe[1]);
  g_clear_object (&options);
  out = afork_test_read_fd_to_eof (out_pipe[0]);
  close (out_pipe[0]);
  g_assert_cmpstr (out, ==, "64\n");
}

static void
test_soak (void)
{
  guint count = rel_env_uint ("AFORK_TEST_SOAK_COUNT", REL_CI_COUNT);
  guint fds_before, fds_after;
  gsize rss_before, rss_after;
  gint64 start;

  /* Warm up: templates started, types registered, caches filled. */
  for (guint i = 0; i < 50 * rel_n_kinds; i++)
    one_process (&rel_kinds[i % rel_n_kinds], i);

  fds_before = rel_settled_fd_count (G_MAXUINT);
  rss_before = rel_rss_kib ();
  start = g_get_monotonic_time ();

  for (guint i = 0; i < count; i++)
    one_process (&rel_kinds[i % rel_n_kinds], i);

  fds_after = rel_settled_fd_count (fds_before);
  rss_after = rel_rss_kib ();

  g_test_message ("%u processes in %.1f s: descriptors %u → %u, RSS %" G_GSIZE_FORMAT
                  " → %" G_GSIZE_FORMAT " KiB",
                  count, (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC,
                  fds_before, fds_after, rss_before, rss_after);

  g_assert_cmpuint (fds_after, ==, fds_before);
#if defined(__SANITIZE_ADDRESS__)
  g_test_message ("RSS not compared: AddressSanitizer keeps freed memory in quarantine");
#else
  if (g_strcmp0 (g_getenv ("AFORK_TEST_VALGRIND"), "1") == 0)
    g_test_message ("RSS not compared: valgrind's own memory counts in it");
  else
    /* Some slack for the allocator's own bookkeeping, far below what a
     * leak per process would cost over the long form. */
    g_assert_cmpuint (rss_after, <=, rss_before + 2048);
#endif
}

int
main (int    argc,
      char **argv)
{
  int ret;

  /* Before any server exists, and without O_CLOEXEC on purpose. */
  g_assert_cmpint (pipe (leak_pipe), ==, 0);

  rel_init (&argc, &argv);

  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *link = g_strdup_printf ("/proc/self/fd/%d", leak_pipe[i]);
      leak_targets[i] = g_file_read_link (link, NULL);
      g_assert_nonnull (leak_targets[i]);
    }

  rel_add_kind_tests ("/afork/reliability/fd-leaks/inherited", test_inherited);
  rel_add_kind_tests ("/afork/reliability/fd-leaks/exact/run", test_exact_run);
  rel_add_kind_tests ("/afork/reliability/fd-leaks/exact/spare", test_exact_spare);
  g_test_add_func ("/afork/reliability/fd-leaks/pipe-eof", test_pipe_eof);
  g_test_add_func ("/afork/reliability/fd-leaks/soak", test_soak);
  g_test_add_func ("/afork/reliability/fd-leaks/template-limit", test_template_limit);

  ret = g_test_run ();
  rel_kinds_reset ();

  return ret;
}
