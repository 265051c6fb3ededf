/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Making the thumbnail of one URI.
 *
 * The parent side does what needs the user's rights: it opens the file
 * (O_NONBLOCK, so that opening a named pipe never waits for a writer;
 * anything but a regular file is refused), reads the MTime, skips what is
 * up to date or failed before, hands the descriptor to the decoder and
 * writes what comes back. At most max-in-flight files are open at once;
 * the others wait in a queue, in order. */
#include "config.h"

#include "thumbnailer-factory.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK (afork-thumbnailer-error-quark, thumb_error)

struct _ThumbFactory
{
  GObject parent_instance;

  ThumbDecoder *decoder;
  char *cache_dir;
  guint max_in_flight;
  guint in_flight;
  gboolean starting;
  GQueue waiting; /* of GTask */
};

typedef struct {
  char *uri;
  char *path;
  ThumbSize size;
  gboolean force;
  gint64 mtime;
} MakeData;

G_DEFINE_FINAL_TYPE (ThumbFactory, thumb_factory, G_TYPE_OBJECT)

static void start_next (ThumbFactory *self);

static void
make_data_free (MakeData *data)
{
  g_free (data->uri);
  g_free (data->path);
  g_free (data);
}

static void
thumb_factory_finalize (GObject *object)
{
  ThumbFactory *self = THUMB_FACTORY (object);

  /* Each waiting task holds a reference on the factory: none is left. */
  g_clear_object (&self->decoder);
  g_free (self->cache_dir);

  G_OBJECT_CLASS (thumb_factory_parent_class)->finalize (object);
}

static void
thumb_factory_class_init (ThumbFactoryClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = thumb_factory_finalize;
}

static void
thumb_factory_init (ThumbFactory *self)
{
  g_queue_init (&self->waiting);
}

ThumbFactory *
thumb_factory_new (ThumbDecoder *decoder,
                   const char   *cache_dir,
                   guint         max_in_flight)
{
  ThumbFactory *self = g_object_new (THUMB_TYPE_FACTORY, NULL);

  self->decoder = g_object_ref (decoder);
  self->cache_dir = g_strdup (cache_dir);
  self->max_in_flight = MAX (1, max_in_flight);

  return self;
}

guint
thumb_factory_get_n_waiting (ThumbFactory *self)
{
  g_return_val_if_fail (THUMB_IS_FACTORY (self), 0);

  return self->waiting.length;
}

static void
return_result (GTask       *task,
               ThumbResult  result,
               GError      *error)
{
  if (error != NULL)
    g_task_set_task_data (task, error, (GDestroyNotify) g_error_free);
  g_task_return_int (task, result);
}

/* Completes a task that was in flight, and starts the next. */
static void
finish_in_flight (GTask       *task,
                  ThumbResult  result,
                  GError      *error)
{
  ThumbFactory *self = g_task_get_source_object (task);
  MakeData *data = g_object_get_data (G_OBJECT (task), "make-data");

  if (result == THUMB_RESULT_FAILED)
    {
      g_autoptr(GError) fail_error = NULL;

      if (!thumb_write_fail_entry (self->cache_dir, data->uri, data->mtime, &fail_error))
        g_warning ("%s", fail_error->message);
    }

  self->in_flight--;
  return_result (task, result, error);
  g_object_unref (task);
  start_next (self);
}

static void
decode_done (GObject      *source,
             GAsyncResult *res,
             gpointer      user_data)
{
  GTask *task = user_data;
  ThumbFactory *self = g_task_get_source_object (task);
  MakeData *data = g_object_get_data (G_OBJECT (task), "make-data");
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) png = NULL;
  g_autofree char *thumb_path = NULL;
  g_autofree char *fail_path = NULL;
  GError *error = NULL;
  gconstpointer bytes;
  gsize length;

  reply = thumb_decoder_decode_finish (THUMB_DECODER (source), res, &error);
  if (reply == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          finish_in_flight (task, THUMB_RESULT_ERROR, error);
          return;
        }
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED))
        {
          GError *wrapped = g_error_new (THUMB_ERROR, THUMB_ERROR_CONNECTION_FAILURE,
                                         "%s", error->message);

          g_error_free (error);
          finish_in_flight (task, THUMB_RESULT_ERROR, wrapped);
          return;
        }

      GError *wrapped = g_error_new (THUMB_ERROR, THUMB_ERROR_INVALID_DATA,
                                     "%s", error->message);

      g_error_free (error);
      finish_in_flight (task, THUMB_RESULT_FAILED, wrapped);
      return;
    }

  png = g_variant_get_child_value (reply, 0);
  bytes = g_variant_get_fixed_array (png, &length, 1);
  thumb_path = thumb_get_path (self->cache_dir, data->size, data->uri);
  if (!thumb_write_atomically (thumb_path, bytes, length, &error))
    {
      GError *wrapped = g_error_new (THUMB_ERROR, THUMB_ERROR_COULD_NOT_WRITE,
                                     "%s", error->message);

      g_error_free (error);
      finish_in_flight (task, THUMB_RESULT_ERROR, wrapped);
      return;
    }

  /* An older fail entry no longer applies. */
  fail_path = thumb_get_fail_path (self->cache_dir, data->uri);
  g_unlink (fail_path);

  finish_in_flight (task, THUMB_RESULT_MADE, NULL);
}

static void
start_one (ThumbFactory *self,
           GTask        *task)
{
  MakeData *data = g_object_get_data (G_OBJECT (task), "make-data");
  g_autofree char *thumb_path = NULL;
  g_autofree char *fail_path = NULL;
  g_autofree char *mtime_str = NULL;
  g_autofree char *size_str = NULL;
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;
  GVariantBuilder keys;
  struct stat st;
  int fd, flags;

  self->in_flight++;

  if (g_cancellable_set_error_if_cancelled (cancellable, &error))
    {
      finish_in_flight (task, THUMB_RESULT_ERROR, error);
      return;
    }

  fd = g_open (data->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0);
  if (fd < 0)
    {
      int saved_errno = errno;

      error = g_error_new (THUMB_ERROR, THUMB_ERROR_CONNECTION_FAILURE,
                           _("Cannot open %s: %s"), data->path, g_strerror (saved_errno));
      /* A file that exists but cannot be read has an MTime: it fails. */
      if (g_stat (data->path, &st) == 0)
        {
          data->mtime = st.st_mtime;
          finish_in_flight (task, THUMB_RESULT_FAILED, error);
        }
      else
        finish_in_flight (task, THUMB_RESULT_ERROR, error);
      return;
    }

  if (fstat (fd, &st) < 0)
    {
      int saved_errno = errno;

      close (fd);
      error = g_error_new (THUMB_ERROR, THUMB_ERROR_CONNECTION_FAILURE,
                           _("Cannot read %s: %s"), data->path, g_strerror (saved_errno));
      finish_in_flight (task, THUMB_RESULT_ERROR, error);
      return;
    }
  data->mtime = st.st_mtime;

  if (!data->force)
    {
      thumb_path = thumb_get_path (self->cache_dir, data->size, data->uri);
      if (thumb_file_is_valid (thumb_path, data->uri, data->mtime))
        {
          close (fd);
          finish_in_flight (task, THUMB_RESULT_UP_TO_DATE, NULL);
          return;
        }
      fail_path = thumb_get_fail_path (self->cache_dir, data->uri);
      if (thumb_file_is_valid (fail_path, data->uri, data->mtime))
        {
          close (fd);
          error = g_error_new (THUMB_ERROR, THUMB_ERROR_INVALID_DATA,
                               _("%s failed before and has not changed since"), data->path);
          finish_in_flight (task, THUMB_RESULT_FAILED_BEFORE, error);
          return;
        }
    }

  if (!S_ISREG (st.st_mode))
    {
      close (fd);
      error = g_error_new (THUMB_ERROR, THUMB_ERROR_UNSUPPORTED,
                           _("%s is not a regular file"), data->path);
      finish_in_flight (task, THUMB_RESULT_FAILED, error);
      return;
    }

  /* The worker reads it with blocking reads. */
  flags = fcntl (fd, F_GETFL);
  if (flags >= 0)
    fcntl (fd, F_SETFL, flags & ~O_NONBLOCK);

  g_variant_builder_init (&keys, G_VARIANT_TYPE ("a{ss}"));
  g_variant_builder_add (&keys, "{ss}", "Thumb::URI", data->uri);
  mtime_str = g_strdup_printf ("%" G_GINT64_FORMAT, data->mtime);
  size_str = g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) st.st_size);
  g_variant_builder_add (&keys, "{ss}", "Thumb::MTime", mtime_str);
  g_variant_builder_add (&keys, "{ss}", "Thumb::Size", size_str);

  thumb_decoder_decode_async (self->decoder, fd, thumb_size_get_pixels (data->size),
                              g_variant_builder_end (&keys), cancellable,
                              decode_done, task);
}

/* A task that completes at once (up to date, say) calls back, and the
 * callback may queue more: the loop below picks them up, without
 * recursing once per file. */
static void
start_next (ThumbFactory *self)
{
  if (self->starting)
    return;

  self->starting = TRUE;
  while (self->in_flight < self->max_in_flight && !g_queue_is_empty (&self->waiting))
    start_one (self, g_queue_pop_head (&self->waiting));
  self->starting = FALSE;
}

void
thumb_factory_make_async (ThumbFactory        *self,
                          const char          *uri,
                          ThumbSize            size,
                          gboolean             force,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  MakeData *data;
  GError *error = NULL;

  g_return_if_fail (THUMB_IS_FACTORY (self));
  g_return_if_fail (uri != NULL);
  g_return_if_fail (size < THUMB_N_SIZES);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, thumb_factory_make_async);

  data = g_new0 (MakeData, 1);
  data->uri = g_strdup (uri);
  data->size = size;
  data->force = force;
  g_object_set_data_full (G_OBJECT (task), "make-data", data, (GDestroyNotify) make_data_free);

  data->path = g_filename_from_uri (uri, NULL, NULL);
  if (data->path == NULL)
    {
      error = g_error_new (THUMB_ERROR, THUMB_ERROR_UNSUPPORTED,
                           _("Not a local file: %s"), uri);
      return_result (task, THUMB_RESULT_ERROR, error);
      return;
    }
  if (thumb_is_uri_in_cache (self->cache_dir, uri))
    {
      error = g_error_new (THUMB_ERROR, THUMB_ERROR_IS_THUMBNAIL,
                           _("%s is a thumbnail"), data->path);
      return_result (task, THUMB_RESULT_ERROR, error);
      return;
    }

  g_queue_push_tail (&self->waiting, g_steal_pointer (&task));
  start_next (self);
}

/* Returns the result; @error is set for every result but MADE and
 * UP_TO_DATE. */
ThumbResult
thumb_factory_make_finish (ThumbFactory  *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  GError *task_error;
  ThumbResult value;

  g_return_val_if_fail (g_task_is_valid (result, self), THUMB_RESULT_ERROR);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == thumb_factory_make_async,
                        THUMB_RESULT_ERROR);

  value = (ThumbResult) g_task_propagate_int (G_TASK (result), NULL);
  task_error = g_task_get_task_data (G_TASK (result));
  if (task_error != NULL && error != NULL)
    *error = g_error_copy (task_error);

  return value;
}
