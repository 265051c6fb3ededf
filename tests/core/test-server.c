/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Finding and starting afork-server: AFORK_SERVER, afork_set_server_path ()
 * and servers that are missing, not executable or not servers at all.
 * Each check runs in a fresh subprocess, since afork_process_new () keeps
 * its default template for the life of the program. */
#include "core-util.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static void
assert_server_not_found (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) process = NULL;

  g_assert_cmpstr (afork_get_server_path (), ==, path);

  process = afork_process_new_exec (&error);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_SERVER_NOT_FOUND);
  g_assert_null (process);
  g_assert_nonnull (strstr (error->message, path));
}

/* AFORK_SERVER names a file that does not exist. */
static void
test_server_missing (void)
{
  const char *missing = "/nonexistent-afork-dir/afork-server";

  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AforkProcess) process = NULL;

      g_setenv ("AFORK_SERVER", missing, TRUE);
      assert_server_not_found (missing);

      /* No default template was started before in this program. */
      process = afork_process_new (&error);
      g_assert_error (error, AFORK_ERROR, AFORK_ERROR_SERVER_NOT_FOUND);
      g_assert_null (process);
      g_assert_nonnull (strstr (error->message, missing));
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* AFORK_SERVER names a file that is not executable, or a directory. */
static void
test_server_not_executable (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *dir = g_dir_make_tmp ("afork-server-XXXXXX", &error);
      g_autofree char *file = NULL;

      g_assert_no_error (error);
      file = g_build_filename (dir, "afork-server", NULL);
      g_file_set_contents (file, "#!/bin/sh\nexit 0\n", -1, &error);
      g_assert_no_error (error);
      g_assert_cmpint (g_chmod (file, 0644), ==, 0);

      g_setenv ("AFORK_SERVER", file, TRUE);
      assert_server_not_found (file);

      g_setenv ("AFORK_SERVER", dir, TRUE);
      assert_server_not_found (dir);

      g_remove (file);
      g_rmdir (dir);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* A "server" that exits at once: an error, never a hang. */
static void
test_server_exits_at_once (void)
{
  if (g_test_subprocess ())
    {
      g_autofree char *true_path = g_find_program_in_path ("true");
      g_autoptr(GError) error = NULL;
      g_autoptr(AforkProcess) exec_process = NULL;
      g_autoptr(AforkProcess) process = NULL;
      g_autoptr(GSocketConnection) connection = NULL;

      g_assert_nonnull (true_path);
      g_setenv ("AFORK_SERVER", true_path, TRUE);

      exec_process = afork_process_new_exec (&error);
      g_assert_no_error (error);
      /* 0 once the "server" is gone already: it may exit before this. */
      g_assert_cmpint (afork_process_get_pid (exec_process), >=, 0);
      afork_process_require (exec_process, TEST_MODULE);
      connection = afork_process_run (exec_process, "test_run_pid", NULL, &error);
      g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED);
      g_assert_null (connection);
      g_clear_error (&error);

      /* The default template: either asking it to fork fails, or the
       * process it never forked is reported at run. */
      process = afork_process_new (&error);
      if (process == NULL)
        g_assert_error (error, AFORK_ERROR, AFORK_ERROR_SPAWN_FAILED);
      else
        {
          g_assert_no_error (error);
          connection = afork_process_run (process, "test_run_pid", NULL, &error);
          g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED);
          g_assert_null (connection);
        }
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

static void
run_pid_ok (AforkProcess *process)
{
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *want = NULL;

  afork_process_require (process, TEST_MODULE);
  connection = afork_process_run (process, "test_run_pid", NULL, &error);
  g_assert_no_error (error);
  text = afork_test_read_connection (connection);
  want = g_strdup_printf ("pid %d\n", (int) afork_process_get_pid (process));
  g_assert_cmpstr (text, ==, want);
}

/* afork_set_server_path (), and AFORK_SERVER taking precedence over it. */
static void
test_server_path (void)
{
  if (g_test_subprocess ())
    {
      g_autofree char *built = g_strdup (g_getenv ("AFORK_SERVER"));
      g_autoptr(GError) error = NULL;
      g_autoptr(AforkProcess) exec_process = NULL;
      g_autoptr(AforkProcess) process = NULL;
      const char *missing = "/nonexistent-afork-dir/afork-server";

      g_assert_nonnull (built);
      g_assert_true (g_path_is_absolute (built));
      g_assert_cmpstr (afork_get_server_path (), ==, built);

      /* Without the variable: the installed server... */
      g_unsetenv ("AFORK_SERVER");
      g_assert_true (g_str_has_suffix (afork_get_server_path (), "/afork-server"));
      g_assert_cmpstr (afork_get_server_path (), !=, built);

      /* ...unless one is set, which both ways of starting use. */
      afork_set_server_path (built);
      g_assert_cmpstr (afork_get_server_path (), ==, built);
      exec_process = afork_process_new_exec (&error);
      g_assert_no_error (error);
      run_pid_ok (exec_process);
      process = afork_process_new (&error);
      g_assert_no_error (error);
      run_pid_ok (process);

      /* The variable wins; an empty one does not count. */
      g_setenv ("AFORK_SERVER", missing, TRUE);
      g_assert_cmpstr (afork_get_server_path (), ==, missing);
      g_setenv ("AFORK_SERVER", "", TRUE);
      g_assert_cmpstr (afork_get_server_path (), ==, built);
      g_unsetenv ("AFORK_SERVER");

      afork_set_server_path (NULL);
      g_assert_cmpstr (afork_get_server_path (), !=, built);
      g_assert_true (g_str_has_suffix (afork_get_server_path (), "/afork-server"));
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int    argc,
      char **argv)
{
  afork_test_init (&argc, &argv);

  g_test_add_func ("/afork/server/missing", test_server_missing);
  g_test_add_func ("/afork/server/not-executable", test_server_not_executable);
  g_test_add_func ("/afork/server/exits-at-once", test_server_exits_at_once);
  g_test_add_func ("/afork/server/path", test_server_path);

  return g_test_run ();
}
