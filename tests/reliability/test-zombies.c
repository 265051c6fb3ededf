/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* No zombies: after many processes of every kind have exited, neither the
 * parent nor any template has a zombie child.
 *
 * AFORK_TEST_ZOMBIE_COUNT sets the number of processes per kind (default
 * 2000, 500 under AddressSanitizer; the long form is 10000). With --early (or AFORK_TEST_EARLY=1) the program calls
 * afork_early_init() first, so that the kinds `new` and `exec` fork the
 * early template. A kind is a RelKind: add one to the table to cover it. */
#include "rel-util.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The fork-self template, made before any thread exists. */
static AforkProcess *self_template;

static AforkProcess *
make_fork_self (G_GNUC_UNUSED RelKind *kind,
                G_GNUC_UNUSED GError **error)
{
  return afork_process_fork (self_template);
}

static RelKind fork_self_kind = { "fork-self", make_fork_self, NULL };

/* The process that reaps processes of @kind: a template, or the test. */
static GPid
reaper_of (RelKind *kind)
{
  g_autoptr(AforkProcess) process = rel_make (kind);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GPid pid, ppid = 0;

  connection = afork_process_run (process, "rel_run_echo", NULL, &error);
  g_assert_no_error (error);
  pid = rel_read_pid_line (connection);
  g_assert_true (afork_test_proc_stat (pid, NULL, &ppid, NULL));
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);

  return ppid;
}

/* Reports the zombies of @parent found by the last look, and how many. */
static guint
report_zombies (GArray *zombies,
                GPid    parent)
{
  for (guint i = 0; i < zombies->len && i < 5; i++)
    g_test_message ("zombie %d, child of %d", g_array_index (zombies, GPid, i), (int) parent);

  return zombies->len;
}

/* Zombies may exist for a moment, until their parent reaps them: wait,
 * with a generous bound, for none to be left. */
static void
assert_no_zombies (GPid parent)
{
  gint64 deadline = g_get_monotonic_time () + AFORK_TEST_WAIT_SECONDS * G_USEC_PER_SEC;
  g_autoptr(GMainContext) context = g_main_context_ref_thread_default ();
  g_autoptr(GArray) zombies = NULL;

  do
    {
      g_clear_pointer (&zombies, g_array_unref);
      zombies = rel_zombie_children (parent);
      if (zombies->len > 0)
        {
          /* GSubprocess reaps from GLib's worker thread; nothing needs
           * this context, but iterate it anyway. */
          g_main_context_iteration (context, FALSE);
          g_usleep (10000);
        }
    }
  while (zombies->len > 0 && g_get_monotonic_time () < deadline);

  /* The verdict of the last look: a child that exits after it (and is
   * reaped a moment later) is no zombie left behind. */
  g_assert_cmpuint (report_zombies (zombies, parent), ==, 0);
}

/* The check can fail: a child the test does not reap is seen. */
static void
test_detector (void)
{
  g_autoptr(GArray) zombies = NULL;
  gboolean seen = FALSE;
  pid_t pid = fork ();

  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    _exit (0);

  for (guint tries = 0; !seen && tries < AFORK_TEST_WAIT_SECONDS * 100; tries++)
    {
      g_clear_pointer (&zombies, g_array_unref);
      zombies = rel_zombie_children (getpid ());
      for (guint i = 0; i < zombies->len; i++)
        seen |= g_array_index (zombies, GPid, i) == pid;
      if (!seen)
        g_usleep (10000);
    }
  g_assert_true (seen);
  g_assert_cmpint (waitpid (pid, NULL, 0), ==, pid);
}

static void
test_kind (gconstpointer data)
{
  RelKind *kind = (RelKind *) data;
  /* Five kinds: half the usual count under the sanitizers. */
#if defined(__SANITIZE_ADDRESS__)
  guint count = rel_env_uint ("AFORK_TEST_ZOMBIE_COUNT", REL_CI_COUNT / 2);
#else
  guint count = rel_env_uint ("AFORK_TEST_ZOMBIE_COUNT", REL_CI_COUNT);
#endif
  guint fds_before, forgotten = 0;
  GPid reaper;
  gint64 start;

  /* The kind's template (if any) exists before counting descriptors. */
  reaper = reaper_of (kind);
  fds_before = rel_settled_fd_count (G_MAXUINT);
  start = g_get_monotonic_time ();

  for (guint i = 0; i < count; i++)
    {
      g_autoptr(AforkProcess) process = rel_make (kind);
      g_autoptr(GSocketConnection) connection = NULL;
      g_autoptr(GError) error = NULL;

      if (i % 10 == 9)
        {
          /* Configured, then forgotten: it exits when it reads EOF. */
          afork_process_send_arg (process, "forgotten");
          forgotten++;
          continue;
        }

      connection = afork_process_run (process, "rel_run_pid", NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpint (rel_read_pid_line (connection), ==, afork_process_get_pid (process));
      g_free (afork_test_read_connection (connection));
    }

  g_test_message ("%u processes of kind %s (%u never run) in %.1f s",
                  count, kind->name, forgotten,
                  (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);

  assert_no_zombies (getpid ());
  if (reaper != getpid ())
    {
      /* A child that just closed its socket may not be reaped yet: the
       * check waits for the template to catch up. */
      assert_no_zombies (reaper);
      g_assert_false (afork_test_proc_gone (reaper));
      /* The same template still serves. */
      g_assert_cmpint (reaper_of (kind), ==, reaper);
    }

  g_assert_cmpuint (rel_settled_fd_count (fds_before), <=, fds_before);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  gboolean early = g_strcmp0 (g_getenv ("AFORK_TEST_EARLY"), "1") == 0;
  int ret;

  for (int i = 1; i < argc; i++)
    if (g_str_equal (argv[i], "--early"))
      {
        early = TRUE;
        memmove (argv + i, argv + i + 1, (argc - i) * sizeof (char *));
        argc--;
        break;
      }

  /* Before anything starts a thread. */
  if (early)
    {
      afork_early_init (&error);
      g_assert_no_error (error);
    }
  else
    {
      g_autofree char *module = NULL;

      self_template = afork_process_fork_self (&error);
      g_assert_no_error (error);
      module = rel_module_path ("afork-rel-module");
      afork_process_require (self_template, module);
    }

  rel_init (&argc, &argv);

  g_test_add_func ("/afork/reliability/zombies/detector", test_detector);
  for (guint k = 0; k < rel_n_kinds; k++)
    {
      g_autofree char *path = NULL;

      /* With an early template, `fork` forks a process of it: keep it. */
      path = g_strdup_printf ("/afork/reliability/zombies/%s%s",
                              early ? "early-" : "", rel_kinds[k].name);
      g_test_add_data_func (path, &rel_kinds[k], test_kind);
    }
  if (!early)
    g_test_add_data_func ("/afork/reliability/zombies/fork-self", &fork_self_kind, test_kind);

  ret = g_test_run ();
  rel_kinds_reset ();
  g_clear_object (&self_template);

  return ret;
}
