/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pool functions used by the pool tests. Built against afork's headers
 * only, with GLib: the server provides afork_child_*. */
#include <afork/afork.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* A domain that only the worker registers: the parent learns it by name. */
#define POOL_TEST_ERROR (g_quark_from_static_string ("afork-pool-test-worker-error"))

/* Returns its parameters. */
EXPORT GVariant *pool_echo (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_echo (G_GNUC_UNUSED AforkChild *child,
           GVariant                 *parameters,
           G_GNUC_UNUSED GError    **error)
{
  return g_variant_ref (parameters);
}

/* Returns NULL without an error: the reply is (). */
EXPORT GVariant *pool_nothing (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_nothing (G_GNUC_UNUSED AforkChild *child,
              G_GNUC_UNUSED GVariant   *parameters,
              G_GNUC_UNUSED GError    **error)
{
  return NULL;
}

static void
exit_in_child (void)
{
  _exit (3);
}

/* A call function for a template: every process forked from it after
 * this exits at once, as a worker that cannot start. */
EXPORT gboolean pool_call_children_exit (AforkChild *, const char * const *, GError **);
gboolean
pool_call_children_exit (G_GNUC_UNUSED AforkChild         *child,
                         G_GNUC_UNUSED const char * const *args,
                         G_GNUC_UNUSED GError            **error)
{
  return pthread_atfork (NULL, NULL, exit_in_child) == 0;
}

/* (i): the worker's pid. */
EXPORT GVariant *pool_pid (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_pid (G_GNUC_UNUSED AforkChild *child,
          G_GNUC_UNUSED GVariant   *parameters,
          G_GNUC_UNUSED GError    **error)
{
  return g_variant_new ("(i)", (gint32) getpid ());
}

/* (s): fails with code 42 of the worker's own domain and that message. */
EXPORT GVariant *pool_fail (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_fail (G_GNUC_UNUSED AforkChild *child,
           GVariant                 *parameters,
           GError                  **error)
{
  const char *message = "failed";

  if (g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(s)")))
    g_variant_get (parameters, "(&s)", &message);
  g_set_error_literal (error, POOL_TEST_ERROR, 42, message);

  return NULL;
}

EXPORT GVariant *pool_abort (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_abort (G_GNUC_UNUSED AforkChild *child,
            G_GNUC_UNUSED GVariant   *parameters,
            G_GNUC_UNUSED GError    **error)
{
  /* No core file for an expected crash. */
  signal (SIGABRT, SIG_DFL);
  abort ();
}

/* (i): _exit()s with that status. */
EXPORT GVariant *pool_exit (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_exit (G_GNUC_UNUSED AforkChild *child,
           GVariant                 *parameters,
           G_GNUC_UNUSED GError    **error)
{
  gint32 status = 3;

  if (g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(i)")))
    g_variant_get (parameters, "(i)", &status);
  _exit (status);
}

/* Sleeps the ms a (u) says, if it is one. */
static void
sleep_as_asked (GVariant *parameters)
{
  guint32 ms = 0;

  if (g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(u)")))
    g_variant_get (parameters, "(u)", &ms);
  g_usleep ((gulong) ms * 1000);
}

/* (u): sleeps that many milliseconds, returns (i) its pid. */
EXPORT GVariant *pool_sleep (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_sleep (G_GNUC_UNUSED AforkChild *child,
            GVariant                 *parameters,
            G_GNUC_UNUSED GError    **error)
{
  sleep_as_asked (parameters);

  return g_variant_new ("(i)", (gint32) getpid ());
}

/* (su): marks its arrival in the directory s, then waits until u calls
 * have arrived there, for 60 s at most; returns (i) its pid. Calls that
 * meet run at the same time, in as many workers. */
EXPORT GVariant *pool_meet (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_meet (G_GNUC_UNUSED AforkChild *child,
           GVariant                 *parameters,
           GError                  **error)
{
  const char *dir_path;
  guint32 wanted;
  g_autofree char *mark = NULL;
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  guint arrived = 0;

  g_variant_get (parameters, "(&su)", &dir_path, &wanted);
  mark = g_strdup_printf ("%s/%d", dir_path, (int) getpid ());
  if (!g_file_set_contents (mark, "", 0, error))
    return NULL;

  while (g_get_monotonic_time () < deadline)
    {
      g_autoptr(GDir) dir = g_dir_open (dir_path, 0, error);

      if (dir == NULL)
        return NULL;
      for (arrived = 0; g_dir_read_name (dir) != NULL; arrived++)
        ;
      if (arrived >= wanted)
        return g_variant_new ("(i)", (gint32) getpid ());
      g_usleep (5 * 1000);
    }

  g_set_error (error, POOL_TEST_ERROR, 1, "Only %u of %u calls met", arrived, wanted);
  return NULL;
}

/* (u): sleeps that many ms; returns (xx), when it started and ended on
 * the monotonic clock (the same in every process), in µs. */
EXPORT GVariant *pool_interval (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_interval (G_GNUC_UNUSED AforkChild *child,
               GVariant                 *parameters,
               G_GNUC_UNUSED GError    **error)
{
  gint64 start = g_get_monotonic_time ();

  sleep_as_asked (parameters);

  return g_variant_new ("(xx)", start, g_get_monotonic_time ());
}

/* Forks a helper that keeps the worker's descriptors (its socket among
 * them) for 20 s, says its pid in a "helper" event (i), then hangs. */
EXPORT GVariant *pool_fork_hang (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_fork_hang (AforkChild               *child,
                G_GNUC_UNUSED GVariant   *parameters,
                G_GNUC_UNUSED GError    **error)
{
  pid_t pid = fork ();

  if (pid == 0)
    {
      g_usleep (20 * G_USEC_PER_SEC);
      _exit (0);
    }
  afork_child_emit_event (child, "helper", g_variant_new ("(i)", (gint32) pid));
  for (;;)
    g_usleep (G_USEC_PER_SEC);

  return NULL;
}

/* (u): emits that many "progress" events (u index), returns (u count). */
EXPORT GVariant *pool_events (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_events (AforkChild            *child,
             GVariant              *parameters,
             G_GNUC_UNUSED GError **error)
{
  guint32 n = 0;

  if (g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(u)")))
    g_variant_get (parameters, "(u)", &n);
  for (guint32 i = 0; i < n; i++)
    afork_child_emit_event (child, "progress", g_variant_new ("(u)", i));

  return g_variant_new ("(u)", n);
}

/* (ah): reads one byte from each descriptor, returns (ay) of them. */
EXPORT GVariant *pool_read_fds (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_read_fds (AforkChild  *child,
               GVariant    *parameters,
               GError     **error)
{
  g_autoptr(GVariantIter) iter = NULL;
  g_autoptr(GByteArray) bytes = g_byte_array_new ();
  gint32 handle;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(ah)")))
    {
      g_set_error_literal (error, POOL_TEST_ERROR, 0, "want (ah)");
      return NULL;
    }

  g_variant_get (parameters, "(ah)", &iter);
  while (g_variant_iter_next (iter, "h", &handle))
    {
      int fd = afork_child_get_call_fd (child, handle);
      guint8 byte = 0;

      if (fd < 0 || read (fd, &byte, 1) != 1)
        {
          g_set_error (error, POOL_TEST_ERROR, 1, "cannot read handle %d", handle);
          return NULL;
        }
      g_byte_array_append (bytes, &byte, 1);
    }

  return g_variant_new ("(@ay)", g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bytes->data,
                                                           bytes->len, 1));
}

/* (u): returns (ah) of that many pipes' read ends, each holding one byte,
 * its index modulo 256. */
EXPORT GVariant *pool_make_fds (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_make_fds (AforkChild  *child,
               GVariant    *parameters,
               GError     **error)
{
  GVariantBuilder builder;
  guint32 n = 0;

  g_variant_get (parameters, "(u)", &n);
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("ah"));
  for (guint32 i = 0; i < n; i++)
    {
      int fds[2];
      guint8 byte = i % 256;

      if (pipe (fds) != 0 || write (fds[1], &byte, 1) != 1)
        {
          g_set_error_literal (error, POOL_TEST_ERROR, 2, g_strerror (errno));
          g_variant_builder_clear (&builder);
          return NULL;
        }
      g_variant_builder_add (&builder, "h", afork_child_add_reply_fd (child, fds[0]));
      close (fds[0]);
      close (fds[1]);
    }

  return g_variant_new ("(ah)", &builder);
}

/* (u): emits an "ahead" event, then does what pool_make_fds () does. */
EXPORT GVariant *pool_event_then_fds (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_event_then_fds (AforkChild  *child,
                     GVariant    *parameters,
                     GError     **error)
{
  afork_child_emit_event (child, "ahead", NULL);

  return pool_make_fds (child, parameters, error);
}

/* (u): lowers the worker's RLIMIT_NOFILE to leave room for that many
 * more descriptors than it has open. */
EXPORT GVariant *pool_limit_fds (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_limit_fds (G_GNUC_UNUSED AforkChild *child,
                GVariant                 *parameters,
                GError                  **error)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  const char *name;
  struct rlimit limit;
  guint32 room = 0;
  int highest = 0;

  g_variant_get (parameters, "(u)", &room);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    highest = MAX (highest, atoi (name));
  if (getrlimit (RLIMIT_NOFILE, &limit) != 0)
    goto failed;
  limit.rlim_cur = (rlim_t) highest + 1 + room;
  if (setrlimit (RLIMIT_NOFILE, &limit) != 0)
    goto failed;

  return g_variant_new ("()");

failed:
  g_set_error_literal (error, POOL_TEST_ERROR, 2, g_strerror (errno));
  return NULL;
}

/* (): returns (u) the number of descriptors open in the worker. */
EXPORT GVariant *pool_count_fds (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_count_fds (G_GNUC_UNUSED AforkChild *child,
                G_GNUC_UNUSED GVariant   *parameters,
                G_GNUC_UNUSED GError    **error)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint32 n = 0;

  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;

  return g_variant_new ("(u)", n);
}

/* (u): emits "pid" (i) with its pid, then sleeps that many milliseconds. */
EXPORT GVariant *pool_announce_sleep (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_announce_sleep (AforkChild *child,
                     GVariant   *parameters,
                     GError    **error)
{
  afork_child_emit_event (child, "pid", g_variant_new ("(i)", (gint32) getpid ()));

  return pool_sleep (child, parameters, error);
}

/* (u): emits "pid" (i) with its pid, then that many "tick" events (u)
 * as fast as it can, then returns (u) the count. */
EXPORT GVariant *pool_event_storm (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_event_storm (AforkChild             *child,
                  GVariant               *parameters,
                  G_GNUC_UNUSED GError  **error)
{
  g_autoptr(GVariant) tick = g_variant_ref_sink (g_variant_new ("(u)", 1));
  guint32 n;

  g_variant_get (parameters, "(u)", &n);
  afork_child_emit_event (child, "pid", g_variant_new ("(i)", (gint32) getpid ()));
  /* One value made once: the worker sends faster than the pool reads. */
  for (guint32 i = 0; i < n; i++)
    afork_child_emit_event (child, "tick", g_variant_ref (tick));

  return g_variant_new ("(u)", n);
}

/* Finds the ring of the worker's replies in its memory map, writes an
 * impossible position of its writer there, wakes the pool and waits for
 * the end: a protocol error. */
EXPORT GVariant *pool_break_ring (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_break_ring (AforkChild               *child,
                 G_GNUC_UNUSED GVariant   *parameters,
                 GError                  **error)
{
  g_autofree char *maps = NULL;
  g_auto(GStrv) lines = NULL;
  volatile guint64 *head = NULL;

  if (!g_file_get_contents ("/proc/self/maps", &maps, NULL, error))
    return NULL;
  lines = g_strsplit (maps, "\n", -1);
  for (guint i = 0; lines[i] != NULL && head == NULL; i++)
    if (strstr (lines[i], "afork-pool-replies") != NULL)
      head = (volatile guint64 *) (gsize) g_ascii_strtoull (lines[i], NULL, 16);
  if (head == NULL)
    {
      g_set_error_literal (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "no ring of replies");
      return NULL;
    }

  *head = G_MAXUINT64 / 2;
  if (write (afork_child_get_fd (child), "w", 1) != 1)
    return NULL;
  for (;;)
    pause ();
}

/* Writes bytes that are no frame on the socket: a protocol error. */
EXPORT GVariant *pool_garbage (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
pool_garbage (AforkChild               *child,
              G_GNUC_UNUSED GVariant   *parameters,
              G_GNUC_UNUSED GError    **error)
{
  static const char junk[] = "Xjunk not a frame";

  if (write (afork_child_get_fd (child), junk, sizeof junk) != sizeof junk)
    return NULL;

  return g_variant_new ("()");
}
