/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.freedesktop.thumbnails.Thumbnailer1 on the session bus.
 *
 * Each Queue call is a request with a handle. Requests are served in
 * order ("foreground" ones first), their images fed to the factory a few
 * at a time so that a later request never waits behind more than a few
 * images of an earlier one. A request gets Started when its first image is
 * fed, Ready for every URI that has an up-to-date thumbnail, Error for
 * every URI that failed (with the specification's error code), and
 * Finished once, also when it is dequeued. The service leaves the bus and
 * exits after idle-timeout seconds without a request. */
#include "config.h"

#include "thumbnailer-service.h"
#include "thumbnailer-dbus.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gi18n-lib.h>

#define THUMB_BUS_NAME "org.freedesktop.thumbnails.Thumbnailer1"
#define THUMB_OBJECT_PATH "/org/freedesktop/thumbnails/Thumbnailer1"

/* Images fed to the factory beyond those it decodes. */
#define FEED_AHEAD 4

typedef struct _Service Service;

typedef struct {
  Service *service;
  guint handle;
  char **uris;
  guint n_uris;
  guint next;          /* the next URI to feed */
  guint outstanding;   /* fed, not completed */
  gboolean valid_flavor;
  ThumbSize size;
  char *flavor;
  gboolean started;
  GCancellable *cancellable;
} Request;

struct _Service {
  ThumbFactory *factory;
  ThumbDBusThumbnailer1 *skeleton;
  GMainLoop *loop;
  GQueue feeding;          /* of Request: not all fed yet */
  GHashTable *requests;    /* handle → Request, every live one */
  guint next_handle;
  guint idle_timeout;
  guint idle_id;
  int status;
};

typedef struct {
  Request *request;
  char *uri;
} Image;

static void pump (Service *service);

static void
request_free (Request *request)
{
  g_strfreev (request->uris);
  g_free (request->flavor);
  g_clear_object (&request->cancellable);
  g_free (request);
}

static gboolean
on_idle_timeout (gpointer user_data)
{
  Service *service = user_data;

  service->idle_id = 0;
  g_debug ("idle for %u s: exiting", service->idle_timeout);
  g_main_loop_quit (service->loop);

  return G_SOURCE_REMOVE;
}

static void
update_idle (Service *service)
{
  if (g_hash_table_size (service->requests) > 0)
    {
      g_clear_handle_id (&service->idle_id, g_source_remove);
      return;
    }
  if (service->idle_id == 0 && service->idle_timeout > 0)
    service->idle_id = g_timeout_add_seconds (service->idle_timeout, on_idle_timeout, service);
}

static void
emit_error (Request    *request,
            const char *uri,
            int         code,
            const char *message)
{
  const char *uris[] = { uri, NULL };

  thumb_dbus_thumbnailer1_emit_error (request->service->skeleton, request->handle,
                                      uris, code, message);
}

/* Finishes @request when everything it fed has completed. */
static void
maybe_finish (Request *request)
{
  Service *service = request->service;

  if (request->next < request->n_uris || request->outstanding > 0)
    return;

  /* A request dequeued before it started gets Finished alone. */
  thumb_dbus_thumbnailer1_emit_finished (service->skeleton, request->handle);
  g_queue_remove (&service->feeding, request);
  g_hash_table_remove (service->requests, GUINT_TO_POINTER (request->handle));
  update_idle (service);
}

static void
image_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Image *image = user_data;
  Request *request = image->request;
  Service *service = request->service;
  g_autoptr(GError) error = NULL;
  ThumbResult value;

  value = thumb_factory_make_finish (THUMB_FACTORY (source), result, &error);
  if (value == THUMB_RESULT_MADE || value == THUMB_RESULT_UP_TO_DATE)
    {
      const char *uris[] = { image->uri, NULL };

      thumb_dbus_thumbnailer1_emit_ready (service->skeleton, request->handle, uris);
    }
  else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      int code = THUMB_ERROR_INVALID_DATA;

      if (error != NULL && error->domain == THUMB_ERROR)
        code = error->code;
      emit_error (request, image->uri, code, error != NULL ? error->message : "");
    }

  request->outstanding--;
  g_free (image->uri);
  g_free (image);

  maybe_finish (request);
  pump (service);
}

/* Feeds images of the oldest requests while the factory has room. */
static void
pump (Service *service)
{
  while (!g_queue_is_empty (&service->feeding) &&
         thumb_factory_get_n_waiting (service->factory) < FEED_AHEAD)
    {
      Request *request = g_queue_peek_head (&service->feeding);

      if (!request->started)
        {
          request->started = TRUE;
          thumb_dbus_thumbnailer1_emit_started (service->skeleton, request->handle);
        }

      if (!request->valid_flavor)
        {
          g_autofree char *message = g_strdup_printf (_("Unknown flavor “%s”"), request->flavor);

          thumb_dbus_thumbnailer1_emit_error (service->skeleton, request->handle,
                                              (const char * const *) request->uris,
                                              THUMB_ERROR_UNSUPPORTED_FLAVOR, message);
          request->next = request->n_uris;
        }

      if (request->next < request->n_uris)
        {
          Image *image = g_new0 (Image, 1);

          image->request = request;
          image->uri = g_strdup (request->uris[request->next++]);
          request->outstanding++;
          thumb_factory_make_async (service->factory, image->uri, request->size, FALSE,
                                    request->cancellable, image_done, image);
        }

      if (request->next == request->n_uris)
        {
          g_queue_remove (&service->feeding, request);
          maybe_finish (request);
        }
    }
}

static void
dequeue (Service *service,
         Request *request)
{
  /* Images not fed are dropped; images fed are cancelled (a running
   * worker is killed); Finished follows once they have completed. */
  request->next = request->n_uris;
  g_cancellable_cancel (request->cancellable);
  g_queue_remove (&service->feeding, request);
  maybe_finish (request);
}

static gboolean
handle_queue (ThumbDBusThumbnailer1  *skeleton,
              GDBusMethodInvocation  *invocation,
              const char * const     *uris,
              G_GNUC_UNUSED const char * const *mime_types,
              const char             *flavor,
              const char             *scheduler,
              guint                   handle_to_dequeue,
              gpointer                user_data)
{
  Service *service = user_data;
  Request *request;

  if (handle_to_dequeue != 0)
    {
      Request *old = g_hash_table_lookup (service->requests, GUINT_TO_POINTER (handle_to_dequeue));

      if (old != NULL)
        dequeue (service, old);
    }

  request = g_new0 (Request, 1);
  request->service = service;
  if (++service->next_handle == 0)
    service->next_handle = 1;
  request->handle = service->next_handle;
  request->uris = g_strdupv ((char **) uris);
  request->n_uris = g_strv_length (request->uris);
  request->flavor = g_strdup (flavor);
  request->valid_flavor = thumb_size_from_name (flavor, &request->size);
  request->cancellable = g_cancellable_new ();

  g_hash_table_insert (service->requests, GUINT_TO_POINTER (request->handle), request);
  if (g_strcmp0 (scheduler, "foreground") == 0)
    g_queue_push_head (&service->feeding, request);
  else
    g_queue_push_tail (&service->feeding, request);
  update_idle (service);

  thumb_dbus_thumbnailer1_complete_queue (skeleton, invocation, request->handle);

  /* Signals about the request come after the reply that names it. */
  pump (service);

  return TRUE;
}

static gboolean
handle_dequeue (ThumbDBusThumbnailer1 *skeleton,
                GDBusMethodInvocation *invocation,
                guint                  handle,
                gpointer               user_data)
{
  Service *service = user_data;
  Request *request = g_hash_table_lookup (service->requests, GUINT_TO_POINTER (handle));

  if (request == NULL)
    {
      g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                                             _("No request has the handle %u"), handle);
      return TRUE;
    }

  thumb_dbus_thumbnailer1_complete_dequeue (skeleton, invocation);
  dequeue (service, request);

  return TRUE;
}

static gboolean
handle_get_supported (ThumbDBusThumbnailer1 *skeleton,
                      GDBusMethodInvocation *invocation,
                      G_GNUC_UNUSED gpointer user_data)
{
  g_autoptr(GPtrArray) schemes = g_ptr_array_new ();
  g_autoptr(GPtrArray) types = g_ptr_array_new_with_free_func (g_free);
  GSList *formats = gdk_pixbuf_get_formats ();

  for (GSList *l = formats; l != NULL; l = l->next)
    {
      g_auto(GStrv) mime_types = gdk_pixbuf_format_get_mime_types (l->data);

      for (guint i = 0; mime_types != NULL && mime_types[i] != NULL; i++)
        {
          g_ptr_array_add (schemes, (gpointer) "file");
          g_ptr_array_add (types, g_strdup (mime_types[i]));
        }
    }
  g_slist_free (formats);
  g_ptr_array_add (schemes, NULL);
  g_ptr_array_add (types, NULL);

  thumb_dbus_thumbnailer1_complete_get_supported (skeleton, invocation,
                                                  (const char * const *) schemes->pdata,
                                                  (const char * const *) types->pdata);
  return TRUE;
}

static gboolean
handle_get_schedulers (ThumbDBusThumbnailer1 *skeleton,
                       GDBusMethodInvocation *invocation,
                       G_GNUC_UNUSED gpointer user_data)
{
  const char * const schedulers[] = { "default", "foreground", "background", NULL };

  thumb_dbus_thumbnailer1_complete_get_schedulers (skeleton, invocation, schedulers);
  return TRUE;
}

static gboolean
handle_get_flavors (ThumbDBusThumbnailer1 *skeleton,
                    GDBusMethodInvocation *invocation,
                    G_GNUC_UNUSED gpointer user_data)
{
  const char *flavors[THUMB_N_SIZES + 1] = { NULL };

  for (guint i = 0; i < THUMB_N_SIZES; i++)
    flavors[i] = thumb_size_get_name ((ThumbSize) i);
  thumb_dbus_thumbnailer1_complete_get_flavors (skeleton, invocation, flavors);
  return TRUE;
}

static void
on_bus_acquired (GDBusConnection *connection,
                 G_GNUC_UNUSED const char *name,
                 gpointer         user_data)
{
  Service *service = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (service->skeleton),
                                         connection, THUMB_OBJECT_PATH, &error))
    {
      g_printerr (_("afork-thumbnailer: cannot export %s: %s\n"), THUMB_OBJECT_PATH, error->message);
      service->status = 1;
      g_main_loop_quit (service->loop);
    }
}

static void
on_name_lost (GDBusConnection *connection,
              const char      *name,
              gpointer         user_data)
{
  Service *service = user_data;

  if (connection == NULL)
    g_printerr (_("afork-thumbnailer: no session bus\n"));
  else
    g_printerr (_("afork-thumbnailer: the name %s is owned by another program\n"), name);
  service->status = 1;
  g_main_loop_quit (service->loop);
}

int
thumb_service_run (ThumbFactory *factory,
                   guint         idle_timeout_seconds)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Service service = { 0 };
  guint owner_id;

  service.factory = factory;
  service.loop = loop;
  service.idle_timeout = idle_timeout_seconds;
  service.requests = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) request_free);
  g_queue_init (&service.feeding);
  service.skeleton = thumb_dbus_thumbnailer1_skeleton_new ();

  g_signal_connect (service.skeleton, "handle-queue", G_CALLBACK (handle_queue), &service);
  g_signal_connect (service.skeleton, "handle-dequeue", G_CALLBACK (handle_dequeue), &service);
  g_signal_connect (service.skeleton, "handle-get-supported", G_CALLBACK (handle_get_supported), &service);
  g_signal_connect (service.skeleton, "handle-get-schedulers", G_CALLBACK (handle_get_schedulers), &service);
  g_signal_connect (service.skeleton, "handle-get-flavors", G_CALLBACK (handle_get_flavors), &service);

  owner_id = g_bus_own_name (G_BUS_TYPE_SESSION, THUMB_BUS_NAME,
                             G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                             on_bus_acquired, NULL, on_name_lost,
                             &service, NULL);
  update_idle (&service);
  g_main_loop_run (loop);

  g_bus_unown_name (owner_id);
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (service.skeleton));
  g_clear_handle_id (&service.idle_id, g_source_remove);

  /* Requests still live (the bus went away) have images in the factory:
   * cancel them and let them complete, with nobody to tell. */
  if (g_hash_table_size (service.requests) > 0)
    {
      GList *live = g_hash_table_get_values (service.requests);

      g_queue_clear (&service.feeding);
      for (GList *l = live; l != NULL; l = l->next)
        {
          Request *request = l->data;

          request->next = request->n_uris;
          g_cancellable_cancel (request->cancellable);
        }
      for (GList *l = live; l != NULL; l = l->next)
        maybe_finish (l->data);
      g_list_free (live);
      while (g_hash_table_size (service.requests) > 0)
        g_main_context_iteration (NULL, TRUE);
    }
  g_hash_table_unref (service.requests);
  g_object_unref (service.skeleton);

  return service.status;
}
