/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pool functions in Python: calls to python:pyworker.* through an
 * AforkPool whose template imported the module, with real workers. */
#include <afork/afork.h>

#include "afork-test-common.h"

#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static AforkPool *
new_pool (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) template = afork_process_new (&error);

  g_assert_no_error (error);
  afork_process_require (template, "python:pyworker");
  return afork_pool_new (template);
}

static GVariant *
pool_call (AforkPool   *pool,
           const char  *function,
           GVariant    *parameters,
           GError     **error)
{
  return afork_pool_call (pool, function, parameters, NULL, error);
}

static void
test_pool_call (void)
{
  g_autoptr(AforkPool) pool = new_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) sum = pool_call (pool, "python:pyworker.add",
                                       g_variant_new ("(ii)", 2, 3), &error);

  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (sum), ==, "x");
  g_assert_cmpint (g_variant_get_int64 (sum), ==, 5);
}

static void
test_pool_round_trip (void)
{
  g_autoptr(AforkPool) pool = new_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) sent = g_variant_ref_sink (
    g_variant_new_parsed ("(true, int64 -5, 2.5, 'text', @ay [0, 1, 255], ['a', 'b'],"
                          " (int64 1, 'x'), {'one': int64 1}, {'a': <int64 1>, 'b': <'x'>},"
                          " uint64 18446744073709551615)"));
  g_autoptr(GVariant) reply = pool_call (pool, "python:pyworker.echo_values", g_variant_ref (sent), &error);

  g_assert_no_error (error);
  g_assert_true (g_variant_equal (sent, reply));
  g_variant_unref (sent);
  g_clear_pointer (&reply, g_variant_unref);

  /* An exact type asked for by the function. */
  reply = pool_call (pool, "python:pyworker.typed", g_variant_new_parsed ("('(yqu)', (1, 2, 3))"),
                     &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (reply), ==, "(yqu)");
  g_clear_pointer (&reply, g_variant_unref);

  /* None: the empty tuple. */
  reply = pool_call (pool, "python:pyworker.nothing", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (reply), ==, "()");
}

static void
test_pool_exception (void)
{
  g_autoptr(AforkPool) pool = new_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = pool_call (pool, "python:pyworker.fail",
                                         g_variant_new ("(ss)", "ValueError", "bad value"), &error);

  g_assert_null (reply);
  g_assert_nonnull (error);
  g_assert_cmpstr (g_quark_to_string (error->domain), ==, "afork-python-error-quark");
  g_assert_cmpint (error->code, ==, 0);
  g_assert_cmpstr (error->message, ==, "ValueError: bad value");
  g_clear_error (&error);

  /* The worker keeps serving. */
  reply = pool_call (pool, "python:pyworker.add", g_variant_new ("(ii)", 1, 1), &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int64 (reply), ==, 2);
}

static void
test_pool_missing_function (void)
{
  g_autoptr(AforkPool) pool = new_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = pool_call (pool, "python:pyworker.no_such_function", NULL, &error);

  g_assert_null (reply);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no_such_function"));
}

typedef struct
{
  guint      pending;
  guint      ok;
  guint      exited;
} Tally;

static void
tally_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Tally *tally = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = afork_pool_call_finish (AFORK_POOL (source), result, &error);

  if (reply != NULL)
    tally->ok++;
  else if (g_error_matches (error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED))
    tally->exited++;
  else
    g_error ("unexpected: %s", error->message);
  tally->pending--;
}

static gboolean
tally_done (gconstpointer data)
{
  return ((const Tally *) data)->pending == 0;
}

static void
wait_tally (Tally *tally)
{
  gint64 deadline = g_get_monotonic_time () + AFORK_TEST_WAIT_SECONDS * G_USEC_PER_SEC * 4;

  while (!tally_done (tally))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
}

static void
test_pool_exit_fails_alone (void)
{
  g_autoptr(AforkPool) pool = new_pool ();
  Tally tally = { 0 };

  afork_pool_set_max_workers (pool, 2);
  for (guint i = 0; i < 200; i++)
    {
      tally.pending++;
      if (i == 50)
        afork_pool_call_async (pool, "python:pyworker.die", g_variant_new ("(i)", 3),
                               NULL, tally_cb, &tally);
      else
        afork_pool_call_async (pool, "python:pyworker.add", g_variant_new ("(ii)", i, 1),
                               NULL, tally_cb, &tally);
    }
  wait_tally (&tally);
  g_assert_cmpuint (tally.exited, ==, 1);
  g_assert_cmpuint (tally.ok, ==, 199);
}

static void
test_pool_thousand_calls (void)
{
  g_autoptr(AforkPool) pool = new_pool ();
  Tally tally = { 0 };

  for (guint i = 0; i < 1000; i++)
    {
      tally.pending++;
      afork_pool_call_async (pool, "python:pyworker.add", g_variant_new ("(ii)", i, 1),
                             NULL, tally_cb, &tally);
    }
  wait_tally (&tally);
  g_assert_cmpuint (tally.ok, ==, 1000);
}

static void
test_pool_fds (void)
{
  g_autoptr(AforkPool) pool = new_pool ();
  g_autoptr(GUnixFDList) in = g_unix_fd_list_new ();
  g_autoptr(GUnixFDList) out = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *read_back = NULL;
  int fds[2];
  int handle;

  /* In: the function reads the descriptor it was given. */
  afork_test_pipe (fds);
  g_assert_cmpint (write (fds[1], "into python", 11), ==, 11);
  close (fds[1]);
  handle = g_unix_fd_list_append (in, fds[0], &error);
  g_assert_no_error (error);
  close (fds[0]);
  reply = afork_pool_call_with_fds (pool, "python:pyworker.read_fd",
                                    g_variant_new ("(h)", handle), in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (reply), ==, "ay");
  g_assert_cmpmem (g_variant_get_data (reply), g_variant_get_size (reply), "into python", 11);
  g_clear_pointer (&reply, g_variant_unref);

  /* Out: the function returns the read end of a pipe with afork.fd (). */
  reply = afork_pool_call_with_fds (pool, "python:pyworker.make_pipe",
                                    g_variant_new ("(s)", "out of python"), NULL, &out, NULL,
                                    &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (reply), ==, "h");
  g_assert_nonnull (out);
  {
    int fd = g_unix_fd_list_get (out, g_variant_get_handle (reply), &error);

    g_assert_no_error (error);
    read_back = afork_test_read_fd_to_eof (fd);
    close (fd);
  }
  g_assert_cmpstr (read_back, ==, "out of python");
}

static void
test_pool_fresh_workers (void)
{
  g_autoptr(AforkPool) pool = new_pool ();
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);

  afork_pool_set_max_calls_per_worker (pool, 1);
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) pid = pool_call (pool, "python:pyworker.pid", NULL, &error);

      g_assert_no_error (error);
      g_hash_table_add (pids, GINT_TO_POINTER ((int) g_variant_get_int64 (pid)));
    }
  g_assert_cmpuint (g_hash_table_size (pids), ==, 20);
}

/* A fresh worker takes its function from the module the template imported
 * (and from a module's __getattr__, which the module's dictionary does
 * not hold), and a function in a module the template never imported is
 * imported in the worker. */
static void
test_pool_fresh_resolve (void)
{
  g_autoptr(AforkPool) pool = new_pool ();
  const char *functions[] = { "python:pyworker.add", "python:pyworker.dynamic_answer",
                              "python:pyworker_counted.no_such_function" };

  afork_pool_set_max_calls_per_worker (pool, 1);
  for (guint round = 0; round < 2; round++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) sum = pool_call (pool, functions[0],
                                           g_variant_new ("(ii)", 2, 3), &error);
      g_autoptr(GVariant) dynamic = NULL;
      g_autoptr(GVariant) missing = NULL;

      g_assert_no_error (error);
      g_assert_cmpint (g_variant_get_int64 (sum), ==, 5);

      dynamic = pool_call (pool, functions[1], NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (g_variant_get_string (dynamic, NULL), ==, "dynamic_answer");

      missing = pool_call (pool, functions[2], NULL, &error);
      g_assert_null (missing);
      g_assert_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND);
      g_assert_nonnull (strstr (error->message, "no_such_function"));
    }
}

/* A template looks up the functions of the modules it required before it
 * forks, so that a fresh worker takes its function as it finds it, with
 * no lookup of the module in sys.modules (which the module counts). The functions are looked
 * up again before a fork that follows Python code: a second pool of the
 * same template, after a call in the template rebound a function, gets
 * the new one. */
static void
test_pool_fresh_primed (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) template = afork_process_new (&error);
  g_autoptr(AforkPool) first = NULL;
  g_autoptr(AforkPool) second = NULL;
  g_autoptr(GVariant) lookups = NULL;
  g_autoptr(GVariant) before = NULL;
  g_autoptr(GVariant) after = NULL;

  g_assert_no_error (error);
  afork_process_require (template, "python:pyworker_lookups");
  first = afork_pool_new (template);
  afork_pool_set_max_calls_per_worker (first, 1);

  lookups = pool_call (first, "python:pyworker_lookups.lookups", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int64 (lookups), ==, 0);

  before = pool_call (first, "python:pyworker_lookups.answer", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_string (before, NULL), ==, "first");

  afork_process_call (template, "python:pyworker_lookups.rebind", NULL);
  second = afork_pool_new (template);
  after = pool_call (second, "python:pyworker_lookups.answer", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_string (after, NULL), ==, "second");
}

/* A fresh worker imports a module its template did not import. */
static void
test_pool_fresh_lazy_import (void)
{
  g_autoptr(AforkPool) pool = new_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  afork_pool_set_max_calls_per_worker (pool, 1);
  reply = pool_call (pool, "python:pyworker.lazy_module_answer", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_get_boolean (reply));
}

/* The objects a worker inherits are frozen (its collections leave the
 * template's pages alone); its own cycles are still collected. */
static void
test_pool_frozen_gc (void)
{
  g_autoptr(AforkPool) pool = new_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) state = NULL;
  gint64 frozen = 0;
  gboolean collected = FALSE;

  afork_pool_set_max_calls_per_worker (pool, 1);
  state = pool_call (pool, "python:pyworker.gc_state", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (state), ==, "(xb)");
  g_variant_get (state, "(xb)", &frozen, &collected);
  g_assert_cmpint (frozen, >, 1000);
  g_assert_true (collected);
}

static guint
count_occurrences (const char *haystack,
                   const char *needle)
{
  guint n = 0;

  for (const char *p = strstr (haystack, needle); p != NULL; p = strstr (p + 1, needle))
    n++;

  return n;
}

/* Calls @function with @text in a worker of @pool. */
static void
call_with_text (AforkPool  *pool,
                const char *function,
                const char *text)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = pool_call (pool, function, g_variant_new ("(s)", text), &error);
  g_assert_no_error (error);
}

/* Checks that a worker of @pool finds nothing to flush when its call
 * begins (the marks of the loader's streams are clear). */
static void
assert_no_stream_marks (AforkPool *pool)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = pool_call (pool, "python:pyworker.stream_marks", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (reply, g_variant_new_parsed ("(false, false)")));
}

/* Calls @first with @text, then @second, each of which returns the
 * process id, and checks that the same worker ran both. */
static void
call_twice_in_one_worker (AforkPool  *pool,
                          const char *first,
                          const char *text,
                          const char *second)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply1 = NULL;
  g_autoptr(GVariant) reply2 = NULL;

  reply1 = pool_call (pool, first, g_variant_new ("(s)", text), &error);
  g_assert_no_error (error);
  reply2 = pool_call (pool, second, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int64 (reply1), ==, g_variant_get_int64 (reply2));
}

/* A line a worker prints reaches the template's standard output even
 * when the worker is killed before it could flush anything (sys.stdout is
 * line-buffered; only an unfinished line is lost); what the template
 * printed while importing is written once, not again by each child; an
 * unfinished line a call leaves is written when the call ends, also when
 * sys.stdout was replaced meanwhile, and again after a flush that
 * failed. */
static void
test_pool_output_with (const char *unbuffered)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) template = NULL;
  g_autoptr(AforkPool) pool = NULL;
  g_autoptr(AforkPool) pool2 = NULL;
  g_autoptr(AforkPool) pool3 = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *mode_out = NULL;
  g_autofree char *mode_err = NULL;
  g_autofree char *errors_err = NULL;
  gint64 fd_out = -1, fd_err = -1;
  gboolean line_out = FALSE, line_err = FALSE, same = FALSE, same_encoding = FALSE;
  int out, saved;

  g_test_message ("PYTHONUNBUFFERED=%s", unbuffered != NULL ? unbuffered : "(unset)");
  if (unbuffered != NULL)
    g_setenv ("PYTHONUNBUFFERED", unbuffered, TRUE);
  else
    g_unsetenv ("PYTHONUNBUFFERED");
  out = g_file_open_tmp ("afork-python-output-XXXXXX", &path, &error);
  g_assert_no_error (error);

  /* The server and its children inherit this standard output. */
  fflush (stdout);
  saved = dup (STDOUT_FILENO);
  g_assert_cmpint (saved, >=, 0);
  g_assert_cmpint (dup2 (out, STDOUT_FILENO), ==, STDOUT_FILENO);
  close (out);

  /* A server of its own (the default template's children would have the
   * standard output it was started with). */
  template = afork_process_new_exec (&error);
  g_assert_no_error (error);
  /* The last of these leaves an unfinished line at import. */
  afork_process_require (template, "python:pyworker");
  afork_process_require (template, "python:pyworker_prints");
  pool = afork_pool_new (template);
  afork_pool_set_max_calls_per_worker (pool, 1);
  for (guint i = 0; i < 3; i++)
    {
      reply = pool_call (pool, "python:pyworker.nothing", NULL, &error);
      g_assert_no_error (error);
      g_clear_pointer (&reply, g_variant_unref);
    }

  /* Nothing left to flush in a fresh worker, although the template left
   * an unfinished line at import. */
  assert_no_stream_marks (pool);

  /* The streams are the usual ones, whatever the loader made of them. */
  reply = pool_call (pool, "python:pyworker.stream_state", NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(ssxxbbbsb)", &mode_out, &mode_err, &fd_out, &fd_err,
                 &line_out, &line_err, &same, &errors_err, &same_encoding);
  g_clear_pointer (&reply, g_variant_unref);
  g_assert_cmpstr (mode_out, ==, "w");
  g_assert_cmpstr (mode_err, ==, "w");
  g_assert_cmpint (fd_out, ==, 1);
  g_assert_cmpint (fd_err, ==, 2);
  g_assert_true (line_out);
  g_assert_true (line_err);
  g_assert_true (same);
  g_assert_cmpstr (errors_err, ==, "backslashreplace");
  g_assert_true (same_encoding);

  /* Unfinished lines, each from a fresh worker that ends after it. */
  call_with_text (pool, "python:pyworker.write_partial", "<text>");
  call_with_text (pool, "python:pyworker.write_partial_bytes", "<bytes>");
  call_with_text (pool, "python:pyworker.write_then_swap", "<swapped>");
  call_with_text (pool, "python:pyworker.write_through_holder", "<held>");

  /* A flush that fails (descriptor 1 not writable) is tried again after
   * the next call, in the same worker, which writes nothing. */
  pool2 = afork_pool_new (template);
  afork_pool_set_max_calls_per_worker (pool2, 2);
  pool3 = afork_pool_new (template);
  afork_pool_set_max_calls_per_worker (pool3, 2);
  call_twice_in_one_worker (pool2, "python:pyworker.write_then_break_stdout", "<retried>",
                            "python:pyworker.mend_stdout");

  /* A thread that writes while the flush after a call runs: held between
   * the stream's first mark and the write, it writes once the flush is
   * over, and what it wrote is flushed after the next call. */
  call_twice_in_one_worker (pool3, "python:pyworker.start_held_writer", "<threaded>",
                            "python:pyworker.release_writer");

  /* The loader's stream detached and another made over its buffer: the
   * other is flushed, and the loader's is not marked again for a flush
   * that cannot work. */
  call_with_text (pool3, "python:pyworker.rewrap_stdout", "<rewrapped>");
  assert_no_stream_marks (pool3);

  reply = pool_call (pool, "python:pyworker.print_and_die", g_variant_new ("(s)", "last words"),
                     &error);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED);
  g_assert_null (reply);
  g_clear_error (&error);

  /* Each worker flushed before it replied. */
  g_clear_object (&pool3);
  g_clear_object (&pool2);
  g_clear_object (&pool);
  g_clear_object (&template);

  fflush (stdout);
  g_assert_cmpint (dup2 (saved, STDOUT_FILENO), ==, STDOUT_FILENO);
  close (saved);

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);
  g_unlink (path);
  g_test_message ("output: %s", contents);
  g_assert_cmpuint (count_occurrences (contents, "last words\n"), ==, 1);
  g_assert_cmpuint (count_occurrences (contents, "pyworker_prints imported"), ==, 1);
  g_assert_cmpuint (count_occurrences (contents, "<text>"), ==, 1);
  g_assert_cmpuint (count_occurrences (contents, "<bytes>"), ==, 1);
  g_assert_cmpuint (count_occurrences (contents, "<swapped>"), ==, 1);
  g_assert_cmpuint (count_occurrences (contents, "<retried>"), ==, 1);
  g_assert_cmpuint (count_occurrences (contents, "<held>"), ==, 1);
  g_assert_cmpuint (count_occurrences (contents, "<threaded>"), ==, 1);
  g_assert_cmpuint (count_occurrences (contents, "<loading>"), ==, 1);
  g_assert_cmpuint (count_occurrences (contents, "<rewrapped>"), ==, 1);
}

/* Line-buffered streams (the loader's doing, not the environment's), and
 * unbuffered ones, as PYTHONUNBUFFERED asks. */
static void
test_pool_output (void)
{
  g_autofree char *saved = g_strdup (g_getenv ("PYTHONUNBUFFERED"));

  test_pool_output_with (NULL);
  test_pool_output_with ("1");
  if (saved != NULL)
    g_setenv ("PYTHONUNBUFFERED", saved, TRUE);
  else
    g_unsetenv ("PYTHONUNBUFFERED");
}

/* site runs in the loader's interpreter (sys.path has its packages
 * directory), after the loader made its standard streams: what it runs
 * (here a sitecustomize that notes them) finds those. */
static void
test_pool_site (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) template = NULL;
  g_autoptr(AforkPool) pool = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *saved = g_strdup (g_getenv ("PYTHONPATH"));
  g_autofree char *path = NULL;

  path = g_strjoin (G_SEARCHPATH_SEPARATOR_S, g_test_get_filename (G_TEST_DIST, "python", "site", NULL),
                    saved, NULL);
  g_setenv ("PYTHONPATH", path, TRUE);
  template = afork_process_new_exec (&error);
  if (saved != NULL)
    g_setenv ("PYTHONPATH", saved, TRUE);
  else
    g_unsetenv ("PYTHONPATH");
  g_assert_no_error (error);
  afork_process_require (template, "python:pyworker");
  pool = afork_pool_new (template);
  reply = pool_call (pool, "python:pyworker.site_state", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (reply, g_variant_new_parsed ("(true, true)")));
}

int
main (int   argc,
      char *argv[])
{
  afork_test_init (&argc, &argv);

  g_test_add_func ("/afork/python/pool/call", test_pool_call);
  g_test_add_func ("/afork/python/pool/round-trip", test_pool_round_trip);
  g_test_add_func ("/afork/python/pool/exception", test_pool_exception);
  g_test_add_func ("/afork/python/pool/missing-function", test_pool_missing_function);
  g_test_add_func ("/afork/python/pool/exit-fails-alone", test_pool_exit_fails_alone);
  g_test_add_func ("/afork/python/pool/thousand-calls", test_pool_thousand_calls);
  g_test_add_func ("/afork/python/pool/fds", test_pool_fds);
  g_test_add_func ("/afork/python/pool/fresh-workers", test_pool_fresh_workers);
  g_test_add_func ("/afork/python/pool/fresh-resolve", test_pool_fresh_resolve);
  g_test_add_func ("/afork/python/pool/fresh-primed", test_pool_fresh_primed);
  g_test_add_func ("/afork/python/pool/fresh-lazy-import", test_pool_fresh_lazy_import);
  g_test_add_func ("/afork/python/pool/frozen-gc", test_pool_frozen_gc);
  g_test_add_func ("/afork/python/pool/output", test_pool_output);
  g_test_add_func ("/afork/python/pool/site", test_pool_site);

  return g_test_run ();
}
