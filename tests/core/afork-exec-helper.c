/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A small multithreaded program that starts processes through afork's
 * exec path, for test-exec-trace to watch under strace. Exits with 0 when
 * every process ran and reported its pid. */
#include <afork/afork.h>

#include <stdlib.h>
#include <string.h>

static GMutex lock;
static GCond cond;
static gboolean quit;

static gpointer
idle_thread (G_GNUC_UNUSED gpointer data)
{
  g_mutex_lock (&lock);
  while (!quit)
    g_cond_wait (&cond, &lock);
  g_mutex_unlock (&lock);

  return NULL;
}

static gboolean
check (AforkProcess *process,
       GError      **error)
{
  g_autoptr(GSocketConnection) connection = NULL;
  g_autofree char *want = NULL;
  char buf[64] = { 0, };
  gsize n = 0;

  afork_process_require (process, "afork-test-module");
  connection = afork_process_run (process, "test_run_pid", NULL, error);
  if (connection == NULL)
    return FALSE;

  if (!g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                                buf, sizeof buf - 1, &n, NULL, error))
    return FALSE;

  want = g_strdup_printf ("pid %d\n", (int) afork_process_get_pid (process));
  if (!g_str_equal (buf, want))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "expected “%s”, got “%s”", want, buf);
      return FALSE;
    }

  return TRUE;
}

/* It runs under strace, where LeakSanitizer cannot stop the world to
 * check for leaks at exit: it is turned off for this program only. */
int __lsan_is_turned_off (void);
int
__lsan_is_turned_off (void)
{
  return 1;
}

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) exec_process = NULL;
  g_autoptr(AforkProcess) template_process = NULL;
  GThread *thread;

  /* Like any real application, the caller has threads of its own. */
  thread = g_thread_new ("idle", idle_thread, NULL);

  exec_process = afork_process_new_exec (&error);
  if (exec_process == NULL || !check (exec_process, &error))
    goto fail;

  /* The default template is started through the same exec path. */
  template_process = afork_process_new (&error);
  if (template_process == NULL || !check (template_process, &error))
    goto fail;

  g_mutex_lock (&lock);
  quit = TRUE;
  g_cond_signal (&cond);
  g_mutex_unlock (&lock);
  g_thread_join (thread);

  g_print ("ok\n");
  return EXIT_SUCCESS;

fail:
  g_printerr ("afork-exec-helper: %s\n", error->message);
  return EXIT_FAILURE;
}
