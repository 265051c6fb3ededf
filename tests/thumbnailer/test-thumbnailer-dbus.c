/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* afork-thumbnailer --dbus on a private session bus (the test runs under
 * dbus-run-session): org.freedesktop.thumbnails.Thumbnailer1 as a client
 * sees it. */
#include "thumbnailer-test-util.h"

#include <stdlib.h>
#include <string.h>

#define BUS_NAME "org.freedesktop.thumbnails.Thumbnailer1"
#define OBJECT_PATH "/org/freedesktop/thumbnails/Thumbnailer1"
#define INTERFACE BUS_NAME
/* The idle time of the service in the test of its idle exit; the other
 * tests give it a long one, so that preparing their images (slow under a
 * sanitizer) cannot outlast it. */
#define IDLE_TIMEOUT "4"
#define LONG_IDLE_TIMEOUT "600"
#define WAIT_SECONDS 180

typedef struct {
  guint handle;
  guint started;
  guint finished;
  gboolean ready_before_started;
  gboolean signal_after_finished;
  GHashTable *ready;   /* URI → NULL */
  GHashTable *failed;  /* URI → error code */
} RequestLog;

typedef struct {
  ThumbTestDir dir;
  GDBusConnection *bus;
  GSubprocess *service;
  GHashTable *logs;    /* handle → RequestLog */
  guint subscription;
} Fixture;

static void
request_log_free (RequestLog *log)
{
  g_hash_table_unref (log->ready);
  g_hash_table_unref (log->failed);
  g_free (log);
}

static RequestLog *
get_log (Fixture *fixture,
         guint    handle)
{
  RequestLog *log = g_hash_table_lookup (fixture->logs, GUINT_TO_POINTER (handle));

  if (log == NULL)
    {
      log = g_new0 (RequestLog, 1);
      log->handle = handle;
      log->ready = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      log->failed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_insert (fixture->logs, GUINT_TO_POINTER (handle), log);
    }

  return log;
}

static void
on_signal (G_GNUC_UNUSED GDBusConnection *connection,
           G_GNUC_UNUSED const char      *sender,
           G_GNUC_UNUSED const char      *path,
           G_GNUC_UNUSED const char      *interface,
           const char                    *signal_name,
           GVariant                      *parameters,
           gpointer                       user_data)
{
  Fixture *fixture = user_data;
  RequestLog *log;
  guint handle;

  g_variant_get_child (parameters, 0, "u", &handle);
  log = get_log (fixture, handle);
  if (log->finished > 0)
    log->signal_after_finished = TRUE;

  if (g_str_equal (signal_name, "Started"))
    log->started++;
  else if (g_str_equal (signal_name, "Finished"))
    log->finished++;
  else if (g_str_equal (signal_name, "Ready"))
    {
      g_autofree const char **uris = NULL;

      g_variant_get_child (parameters, 1, "^a&s", &uris);
      if (log->started == 0)
        log->ready_before_started = TRUE;
      for (guint i = 0; uris[i] != NULL; i++)
        g_hash_table_add (log->ready, g_strdup (uris[i]));
    }
  else if (g_str_equal (signal_name, "Error"))
    {
      g_autofree const char **uris = NULL;
      const char *message;
      gint32 code;

      g_variant_get (parameters, "(u^a&si&s)", NULL, &uris, &code, &message);
      g_test_message ("Error %d: %s", code, message);
      for (guint i = 0; uris[i] != NULL; i++)
        g_hash_table_insert (log->failed, g_strdup (uris[i]), GINT_TO_POINTER (code));
    }
}

static gboolean
on_timeout (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
iterate_until (const gboolean *done,
               const char     *what)
{
  gboolean timed_out = FALSE;
  guint id = g_timeout_add_seconds (WAIT_SECONDS, on_timeout, &timed_out);

  while (!*done && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!*done)
    g_error ("waited %d s for %s", WAIT_SECONDS, what);
  g_source_remove (id);
}

/* The name may still belong, for a moment, to the service of the test
 * before: the owner counts when it is the process just started. */
static gboolean
owned_by (GDBusConnection *bus,
          GSubprocess     *service)
{
  g_autoptr(GVariant) reply = NULL;
  guint32 pid = 0;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                                       g_variant_new ("(s)", BUS_NAME), G_VARIANT_TYPE ("(u)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(u)", &pid);

  return g_strcmp0 (g_subprocess_get_identifier (service), NULL) != 0 &&
         (guint32) atoi (g_subprocess_get_identifier (service)) == pid;
}

/* @data: the service's idle time in seconds (a string), or %NULL for a
 * long one. */
static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autofree char *idle_option = g_strconcat ("--idle-timeout=",
                                              data != NULL ? (const char *) data : LONG_IDLE_TIMEOUT,
                                              NULL);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GError) error = NULL;
  gboolean timed_out = FALSE;
  guint id;

  thumb_test_dir_init (&fixture->dir);
  fixture->logs = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) request_log_free);

  fixture->bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  fixture->subscription =
    g_dbus_connection_signal_subscribe (fixture->bus, BUS_NAME, INTERFACE, NULL, OBJECT_PATH,
                                        NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                        on_signal, fixture, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_setenv (launcher, "XDG_CACHE_HOME", fixture->dir.cache_home, TRUE);
  fixture->service = g_subprocess_launcher_spawn (launcher, &error, thumb_test_program (),
                                                  "--dbus", "--jobs=2", idle_option, NULL);
  g_assert_no_error (error);

  id = g_timeout_add_seconds (WAIT_SECONDS, on_timeout, &timed_out);
  while (!owned_by (fixture->bus, fixture->service) && !timed_out)
    {
      g_usleep (20000);
      g_main_context_iteration (NULL, FALSE);
    }
  if (timed_out)
    g_error ("waited %d s for the service on the bus", WAIT_SECONDS);
  g_source_remove (id);
}

static void
fixture_teardown (Fixture       *fixture,
                  G_GNUC_UNUSED gconstpointer data)
{
  if (fixture->service != NULL)
    {
      g_subprocess_force_exit (fixture->service);
      g_subprocess_wait (fixture->service, NULL, NULL);
      g_clear_object (&fixture->service);
    }
  g_dbus_connection_signal_unsubscribe (fixture->bus, fixture->subscription);
  g_clear_object (&fixture->bus);
  g_hash_table_unref (fixture->logs);
  thumb_test_dir_clear (&fixture->dir);
}

static GVariant *
call (Fixture    *fixture,
      const char *method,
      GVariant   *parameters,
      const char *reply_type)
{
  g_autoptr(GError) error = NULL;
  GVariant *reply;

  reply = g_dbus_connection_call_sync (fixture->bus, BUS_NAME, OBJECT_PATH, INTERFACE, method,
                                       parameters, G_VARIANT_TYPE (reply_type),
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, &error);
  g_assert_no_error (error);

  return reply;
}

static guint
queue (Fixture            *fixture,
       const char * const *uris,
       const char         *flavor)
{
  const char *no_types[] = { NULL };
  g_autoptr(GVariant) reply = NULL;
  guint handle;

  reply = call (fixture, "Queue",
                g_variant_new ("(^as^asssu)", uris, no_types, flavor, "default", 0),
                "(u)");
  g_variant_get (reply, "(u)", &handle);
  g_assert_cmpuint (handle, !=, 0);

  return handle;
}

static void
wait_finished (Fixture *fixture,
               guint    handle)
{
  gboolean timed_out = FALSE;
  guint id = g_timeout_add_seconds (WAIT_SECONDS, on_timeout, &timed_out);

  while (get_log (fixture, handle)->finished == 0 && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (timed_out)
    g_error ("waited %d s for Finished of request %u", WAIT_SECONDS, handle);
  g_source_remove (id);

  /* Signals emitted after Finished would arrive by now. */
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
}

/* 50 URIs, some broken: Started, Ready for each good one, Error for each
 * broken one, then Finished. */
static void
test_queue (Fixture       *fixture,
            G_GNUC_UNUSED gconstpointer data)
{
  g_autoptr(GPtrArray) uris = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) good = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) broken = g_ptr_array_new_with_free_func (g_free);
  RequestLog *log;
  guint handle;

  for (int i = 0; i < 50; i++)
    {
      g_autofree char *name = NULL;
      g_autofree char *path = NULL;

      if (i % 5 == 4)
        {
          name = g_strdup_printf ("broken %02d.jpg", i);
          path = thumb_test_write_bytes (fixture->dir.images, name, "broken", i % 2 ? 6 : 0);
          g_ptr_array_add (broken, g_strdup (path));
        }
      else
        {
          name = g_strdup_printf ("good #%02d.jpg", i);
          path = thumb_test_write_image (fixture->dir.images, name, "jpeg", 320, 240);
          g_ptr_array_add (good, g_strdup (path));
        }
      g_ptr_array_add (uris, thumb_test_uri (path));
    }
  g_ptr_array_add (uris, NULL);

  handle = queue (fixture, (const char * const *) uris->pdata, "large");
  wait_finished (fixture, handle);

  log = get_log (fixture, handle);
  g_assert_cmpuint (log->started, ==, 1);
  g_assert_cmpuint (log->finished, ==, 1);
  g_assert_false (log->ready_before_started);
  g_assert_false (log->signal_after_finished);
  g_assert_cmpuint (g_hash_table_size (log->ready), ==, good->len);
  g_assert_cmpuint (g_hash_table_size (log->failed), ==, broken->len);

  for (guint i = 0; i < good->len; i++)
    {
      g_autofree char *uri = thumb_test_uri (good->pdata[i]);

      g_assert_true (g_hash_table_contains (log->ready, uri));
      thumb_test_check_thumb (&fixture->dir, "large", good->pdata[i], 256, 192, 320, 240,
                              "image/jpeg");
    }
  for (guint i = 0; i < broken->len; i++)
    {
      g_autofree char *uri = thumb_test_uri (broken->pdata[i]);

      g_assert_true (g_hash_table_contains (log->failed, uri));
      thumb_test_check_fail_entry (&fixture->dir, broken->pdata[i]);
    }
}

/* A request queued behind a long one and dequeued: Finished alone, and
 * none of its thumbnails made. An unknown handle is an error. */
static void
test_dequeue (Fixture       *fixture,
              G_GNUC_UNUSED gconstpointer data)
{
  g_autoptr(GPtrArray) long_uris = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) short_paths = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) short_uris = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  RequestLog *log;
  guint first, second;

  for (int i = 0; i < 40; i++)
    {
      g_autofree char *name = g_strdup_printf ("long-%02d.jpg", i);
      g_autofree char *path = thumb_test_write_image (fixture->dir.images, name, "jpeg", 1600, 1200);

      g_ptr_array_add (long_uris, thumb_test_uri (path));
    }
  g_ptr_array_add (long_uris, NULL);
  for (int i = 0; i < 5; i++)
    {
      g_autofree char *name = g_strdup_printf ("short-%d.png", i);
      char *path = thumb_test_write_image (fixture->dir.images, name, "png", 64, 64);

      g_ptr_array_add (short_uris, thumb_test_uri (path));
      g_ptr_array_add (short_paths, path);
    }
  g_ptr_array_add (short_uris, NULL);

  first = queue (fixture, (const char * const *) long_uris->pdata, "xx-large");
  second = queue (fixture, (const char * const *) short_uris->pdata, "normal");
  reply = call (fixture, "Dequeue", g_variant_new ("(u)", second), "()");

  wait_finished (fixture, second);
  log = get_log (fixture, second);
  g_assert_cmpuint (log->started, ==, 0);
  g_assert_cmpuint (g_hash_table_size (log->ready), ==, 0);
  g_assert_cmpuint (g_hash_table_size (log->failed), ==, 0);
  for (guint i = 0; i < short_paths->len; i++)
    {
      g_autofree char *thumb = thumb_test_thumb_path (&fixture->dir, "normal", short_paths->pdata[i]);

      g_assert_false (g_file_test (thumb, G_FILE_TEST_EXISTS));
    }

  wait_finished (fixture, first);
  g_assert_cmpuint (g_hash_table_size (get_log (fixture, first)->ready), ==, 40);

  g_dbus_connection_call_sync (fixture->bus, BUS_NAME, OBJECT_PATH, INTERFACE, "Dequeue",
                               g_variant_new ("(u)", 123456), NULL,
                               G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, &error);
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS);
}

/* What the service says it supports; an unknown flavor is an Error. */
static void
test_supported (Fixture       *fixture,
                G_GNUC_UNUSED gconstpointer data)
{
  g_autoptr(GVariant) flavors = call (fixture, "GetFlavors", NULL, "(as)");
  g_autoptr(GVariant) schedulers = call (fixture, "GetSchedulers", NULL, "(as)");
  g_autoptr(GVariant) supported = call (fixture, "GetSupported", NULL, "(asas)");
  g_autoptr(GVariant) schedulers_list = g_variant_get_child_value (schedulers, 0);
  g_autofree const char **flavor_names = NULL;
  g_autofree const char **scheme_list = NULL;
  g_autofree const char **type_list = NULL;
  g_autofree char *photo = thumb_test_write_image (fixture->dir.images, "p.jpg", "jpeg", 50, 50);
  g_autofree char *uri = thumb_test_uri (photo);
  const char *uris[] = { uri, NULL };
  RequestLog *log;
  guint handle;

  g_variant_get (flavors, "(^a&s)", &flavor_names);
  g_assert_cmpuint (g_strv_length ((char **) flavor_names), ==, 4);
  g_assert_true (g_strv_contains (flavor_names, "normal"));
  g_assert_true (g_strv_contains (flavor_names, "xx-large"));

  g_variant_get (supported, "(^a&s^a&s)", &scheme_list, &type_list);
  g_assert_cmpuint (g_strv_length ((char **) scheme_list), ==, g_strv_length ((char **) type_list));
  g_assert_true (g_strv_contains (type_list, "image/jpeg"));
  g_assert_true (g_strv_contains (type_list, "image/png"));
  g_assert_true (g_strv_contains (scheme_list, "file"));
  g_assert_cmpuint (g_variant_n_children (schedulers_list), >, 0);

  handle = queue (fixture, uris, "gigantic");
  wait_finished (fixture, handle);
  log = get_log (fixture, handle);
  g_assert_cmpint (GPOINTER_TO_INT (g_hash_table_lookup (log->failed, uri)), ==, 5);
}

static void
on_exited (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

/* Without work, the service leaves after its idle time. */
static void
test_idle_exit (Fixture       *fixture,
                G_GNUC_UNUSED gconstpointer data)
{
  g_autofree char *photo = thumb_test_write_image (fixture->dir.images, "p.png", "png", 50, 50);
  g_autofree char *uri = thumb_test_uri (photo);
  const char *uris[] = { uri, NULL };
  gboolean exited = FALSE;
  gint64 finished_at, exited_at;

  wait_finished (fixture, queue (fixture, uris, "normal"));
  finished_at = g_get_monotonic_time ();

  g_subprocess_wait_async (fixture->service, NULL, on_exited, &exited);
  iterate_until (&exited, "the service to exit after its idle time");
  exited_at = g_get_monotonic_time ();

  g_assert_true (g_subprocess_get_if_exited (fixture->service));
  g_assert_cmpint (g_subprocess_get_exit_status (fixture->service), ==, 0);
  /* Not before its idle time (the bound above is generous). */
  g_assert_cmpint (exited_at - finished_at, >=, (atoi (IDLE_TIMEOUT) - 1) * G_USEC_PER_SEC);
  g_clear_object (&fixture->service);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  if (g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL)
    {
      g_test_skip ("no private session bus: run under dbus-run-session");
      return g_test_run ();
    }

  g_test_add ("/thumbnailer/dbus/queue", Fixture, NULL, fixture_setup, test_queue, fixture_teardown);
  g_test_add ("/thumbnailer/dbus/dequeue", Fixture, NULL, fixture_setup, test_dequeue, fixture_teardown);
  g_test_add ("/thumbnailer/dbus/supported", Fixture, NULL, fixture_setup, test_supported, fixture_teardown);
  g_test_add ("/thumbnailer/dbus/idle-exit", Fixture, IDLE_TIMEOUT, fixture_setup, test_idle_exit,
              fixture_teardown);

  return g_test_run ();
}
