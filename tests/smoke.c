#include <afork/afork.h>
#include <stdio.h>
int main (void) {
  g_autoptr(GError) error = NULL;
  AforkProcess *p = afork_process_new (&error);
  g_assert_no_error (error);
  afork_process_require (p, "afork-test-module");
  afork_process_send_arg (p, "hello");
  GSocketConnection *c = afork_process_run (p, "test_run_args", NULL, &error);
  g_assert_no_error (error);
  char buf[4096];
  gssize n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (c)), buf, sizeof buf - 1, NULL, &error);
  buf[n > 0 ? n : 0] = 0; printf ("n=%d err=%s\n", (int) n, error ? error->message : "-");
  printf ("pid %d: %s", afork_process_get_pid (p), buf);
  return 0;
}
