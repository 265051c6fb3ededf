/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Python functions in afork processes, through real servers: the python:
 * loader imports modules in templates, runs run and call functions,
 * reports exceptions, and forks as Python forks. The modules are in
 * pymodules/, on PYTHONPATH. */
#include <afork/afork.h>

#include "afork-test-common.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static char *
run_and_read (AforkProcess *process,
              const char   *function)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) connection = afork_test_run (process, function, &error);

  g_assert_no_error (error);
  return afork_test_read_connection (connection);
}

static GError *
run_expecting_error (AforkProcess *process,
                     const char   *function)
{
  GError *error = NULL;
  g_autoptr(GSocketConnection) connection = afork_test_run (process, function, &error);

  g_assert_null (connection);
  g_assert_nonnull (error);
  return error;
}

static AforkProcess *
new_process (void)
{
  g_autoptr(GError) error = NULL;
  AforkProcess *process = afork_process_new (&error);

  g_assert_no_error (error);
  return process;
}

static void
test_require_missing (void)
{
  g_autoptr(AforkProcess) process = new_process ();
  g_autoptr(GError) error = NULL;

  afork_process_require (process, "python:pyworker_no_such_module");
  error = run_expecting_error (process, "python:pyworker.report_state");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "pyworker_no_such_module"));
  g_assert_nonnull (strstr (error->message, "ModuleNotFoundError"));
}

static void
test_require_raises (void)
{
  g_autoptr(AforkProcess) process = new_process ();
  g_autoptr(GError) error = NULL;

  afork_process_require (process, "python:pyworker_raises");
  error = run_expecting_error (process, "python:pyworker.report_state");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND);
  g_assert_nonnull (strstr (error->message,
                            "RuntimeError: pyworker_raises refuses to be imported"));
}

static void
test_require_thread (void)
{
  g_autoptr(AforkProcess) process = new_process ();
  g_autoptr(GError) error = NULL;

  afork_process_require (process, "python:pyworker_thread");
  error = run_expecting_error (process, "python:pyworker.report_state");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_THREADED);
  g_assert_nonnull (strstr (error->message, "pyworker_thread"));
}

static void
test_call_thread (void)
{
  g_autoptr(AforkProcess) process = new_process ();
  g_autoptr(GError) error = NULL;

  afork_process_call (process, "python:pyworker.start_thread", NULL);
  error = run_expecting_error (process, "python:pyworker.report_state");
  /* The call failed; its reason is the loader's. */
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CALL_FAILED);
  g_assert_nonnull (strstr (error->message, "started a thread"));
}

static void
test_function_missing (void)
{
  g_autoptr(AforkProcess) process = new_process ();
  g_autoptr(GError) error = NULL;

  error = run_expecting_error (process, "python:pyworker.no_such_function");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "pyworker.no_such_function"));
}

static void
test_function_bad_name (void)
{
  g_autoptr(AforkProcess) process = new_process ();
  g_autoptr(GError) error = NULL;

  error = run_expecting_error (process, "python:nodot");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "nodot"));
}

static void
test_unknown_prefix (void)
{
  g_autoptr(AforkProcess) process = new_process ();
  g_autoptr(GError) error = NULL;

  afork_process_require (process, "cobol:payroll");
  error = run_expecting_error (process, "python:pyworker.report_state");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "cobol"));
}

static void
test_run_args (void)
{
  g_autoptr(AforkProcess) process = new_process ();
  g_autoptr(GBytes) bytes = g_bytes_new ("\xff\0x", 3);
  g_autofree char *got = NULL;
  int fds[2];

  afork_test_pipe (fds);
  g_assert_cmpint (write (fds[1], "piped", 5), ==, 5);
  close (fds[1]);

  afork_process_send_arg (process, "héllo");
  afork_process_send_bytes (process, bytes);
  afork_process_send_fd (process, fds[0]);
  close (fds[0]);
  afork_process_send_arg (process, "");

  got = run_and_read (process, "python:pyworker.report_args");
  g_assert_cmpstr (got, ==, "str 'héllo'\nbytes b'\\xff\\x00x'\nfd piped\nstr ''\n");
}

static void
test_run_socket (void)
{
  g_autoptr(AforkProcess) process = new_process ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autofree char *got = NULL;
  GOutputStream *out;

  connection = afork_test_run (process, "python:pyworker.echo", &error);
  g_assert_no_error (error);
  out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  g_output_stream_write_all (out, "over the socket", 15, NULL, NULL, &error);
  g_assert_no_error (error);
  g_socket_shutdown (g_socket_connection_get_socket (connection), FALSE, TRUE, &error);
  g_assert_no_error (error);
  got = afork_test_read_connection (connection);
  g_assert_cmpstr (got, ==, "OVER THE SOCKET");
}

static int
run_and_wait (AforkProcess *process,
              const char   *function)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) connection = afork_test_run (process, function, &error);
  g_autofree char *got = NULL;

  g_assert_no_error (error);
  got = afork_test_read_connection (connection);
  afork_process_wait (process, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (afork_process_get_if_exited (process));

  return afork_process_get_exit_status (process);
}

static void
test_run_exit_status (void)
{
  g_autoptr(AforkProcess) exits = new_process ();
  g_autoptr(AforkProcess) raises = new_process ();

  afork_process_send_arg (exits, "3");
  g_assert_cmpint (run_and_wait (exits, "python:pyworker.exit_with"), ==, 3);
  /* An uncaught exception: 1, as python3 itself. */
  g_assert_cmpint (run_and_wait (raises, "python:pyworker.raise_error"), ==, 1);
}

static void
test_call_state (void)
{
  g_autoptr(AforkProcess) process = new_process ();
  const char *first[] = { "colour", "blue", NULL };
  const char *second[] = { "size", "10", NULL };
  g_autofree char *got = NULL;

  afork_process_require (process, "python:pyworker");
  afork_process_call (process, "python:pyworker.set_state", first);
  afork_process_call (process, "python:pyworker.set_state", second);
  got = run_and_read (process, "python:pyworker.report_state");
  g_assert_cmpstr (got, ==, "[('colour', 'blue'), ('size', '10')]");
}

static void
test_call_exception (void)
{
  g_autoptr(AforkProcess) process = new_process ();
  const char *args[] = { "a", "b", NULL };
  g_autoptr(GError) error = NULL;

  afork_process_call (process, "python:pyworker.fail_call", args);
  error = run_expecting_error (process, "python:pyworker.report_state");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CALL_FAILED);
  g_assert_nonnull (strstr (error->message, "python:pyworker.fail_call"));
  g_assert_nonnull (strstr (error->message, "KeyError: 'call failed with a,b'"));
  g_assert_nonnull (strstr (error->message, "afork-python-error-quark"));
}

static void
test_fork_random (void)
{
  g_autoptr(AforkProcess) template = new_process ();
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  afork_process_require (template, "python:pyworker");
  for (guint i = 0; i < 10; i++)
    {
      g_autoptr(AforkProcess) child = afork_process_fork (template);
      g_autofree char *got = run_and_read (child, "python:pyworker.report_random");
      const char *value = strchr (got, ' ');

      g_assert_nonnull (value);
      g_assert_false (g_hash_table_contains (seen, value));
      g_hash_table_add (seen, g_strdup (value));
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, 10);
}

static void
test_fork_hooks (void)
{
  g_autoptr(AforkProcess) template = new_process ();

  afork_process_call (template, "python:pyworker.count_at_fork", NULL);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(AforkProcess) child = afork_process_fork (template);
      g_autofree char *got = run_and_read (child, "python:pyworker.report_at_fork");

      /* The handler ran once in the child's own fork (the template's
       * fork from its template came before it was registered). */
      g_assert_cmpstr (got, ==, "1\n");
    }
}

static void
test_fork_import_once (void)
{
  g_autoptr(AforkProcess) template = new_process ();
  g_autofree char *dir = g_dir_make_tmp ("afork-python-XXXXXX", NULL);
  g_autofree char *log = g_build_filename (dir, "imports", NULL);
  g_autofree char *imports = NULL;
  g_auto(GStrv) lines = NULL;
  g_autofree char *template_pid = NULL;

  /* The template reads the variable from its environment at import: the
   * default template is already running, so use one spawned now. */
  g_clear_object (&template);
  g_setenv ("PYWORKER_IMPORT_LOG", log, TRUE);
  {
    g_autoptr(GError) error = NULL;
    template = afork_process_new_exec (&error);
    g_assert_no_error (error);
  }
  g_unsetenv ("PYWORKER_IMPORT_LOG");

  afork_process_require (template, "python:pyworker_counted");
  for (guint i = 0; i < 100; i++)
    {
      g_autoptr(AforkProcess) child = afork_process_fork (template);
      g_autofree char *got = run_and_read (child, "python:pyworker.report_import_count");
      g_auto(GStrv) fields = g_strsplit (got, " ", 2);

      g_assert_cmpuint (g_strv_length (fields), ==, 2);
      /* Imported in another process (the template), not in this child. */
      g_assert_cmpstr (fields[0], !=, g_strchomp (fields[1]));
      if (template_pid == NULL)
        template_pid = g_strdup (fields[1]);
      g_assert_cmpstr (fields[1], ==, template_pid);
    }

  g_assert_true (g_file_get_contents (log, &imports, NULL, NULL));
  lines = g_strsplit (g_strchomp (imports), "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 1);
  g_assert_cmpstr (lines[0], ==, template_pid);

  g_unlink (log);
  g_rmdir (dir);
}

int
main (int   argc,
      char *argv[])
{
  afork_test_init (&argc, &argv);

  g_test_add_func ("/afork/python/require/missing", test_require_missing);
  g_test_add_func ("/afork/python/require/raises", test_require_raises);
  g_test_add_func ("/afork/python/require/thread", test_require_thread);
  g_test_add_func ("/afork/python/call/thread", test_call_thread);
  g_test_add_func ("/afork/python/function/missing", test_function_missing);
  g_test_add_func ("/afork/python/function/bad-name", test_function_bad_name);
  g_test_add_func ("/afork/python/loader/unknown-prefix", test_unknown_prefix);
  g_test_add_func ("/afork/python/run/args", test_run_args);
  g_test_add_func ("/afork/python/run/socket", test_run_socket);
  g_test_add_func ("/afork/python/run/exit-status", test_run_exit_status);
  g_test_add_func ("/afork/python/call/state", test_call_state);
  g_test_add_func ("/afork/python/call/exception", test_call_exception);
  g_test_add_func ("/afork/python/fork/random", test_fork_random);
  g_test_add_func ("/afork/python/fork/at-fork-handlers", test_fork_hooks);
  g_test_add_func ("/afork/python/fork/import-once", test_fork_import_once);

  return g_test_run ();
}
