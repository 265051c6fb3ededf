/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where images are decoded.
 *
 * An AforkPool whose template has loaded the worker module, initialised
 * gdk-pixbuf and its loaders (afork_thumbnailer_init), then confined
 * itself: nothing readable beyond what the loaders may still open, nothing
 * writable, no network, no exec, a memory limit. max-calls-per-worker is 1:
 * every image is decoded in a fresh process forked for it, which a crash,
 * a hang past call-timeout or an allocation past the limit costs that
 * image alone. */
#include "config.h"

#include "thumbnailer-decoder.h"
#include "thumbnailer-config.h"
#include "thumbnailer-decode.h"

#include <glib/gi18n-lib.h>
#include <gio/gunixfdlist.h>

#include <unistd.h>

#include <afork/afork.h>

struct _ThumbDecoder
{
  GObject parent_instance;

  ThumbDecoderOptions options;
  char *crash_marker;
  char *hang_marker;
  AforkPool *pool;
};

G_DEFINE_FINAL_TYPE (ThumbDecoder, thumb_decoder, G_TYPE_OBJECT)

static void
thumb_decoder_finalize (GObject *object)
{
  ThumbDecoder *self = THUMB_DECODER (object);

  g_clear_object (&self->pool);
  g_free (self->crash_marker);
  g_free (self->hang_marker);

  G_OBJECT_CLASS (thumb_decoder_parent_class)->finalize (object);
}

static void
thumb_decoder_class_init (ThumbDecoderClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = thumb_decoder_finalize;
}

static void
thumb_decoder_init (G_GNUC_UNUSED ThumbDecoder *self)
{
}

/* Run from the build tree, the program uses the server and the module it
 * was built with; installed, the installed ones. AFORK_THUMBNAILER_MODULE
 * names another module (the tests' way). */
static gboolean
running_from_build_tree (void)
{
  g_autofree char *self_path = g_file_read_link ("/proc/self/exe", NULL);

  return self_path != NULL && g_str_has_prefix (self_path, THUMB_BUILD_ROOT "/");
}

static const char *
worker_module_path (void)
{
  const char *env = g_getenv ("AFORK_THUMBNAILER_MODULE");

  if (env != NULL && *env != '\0')
    return env;
  return running_from_build_tree () ? THUMB_MODULE_BUILD_PATH : THUMB_MODULE_INSTALLED_PATH;
}

static AforkSandbox *
make_sandbox (const ThumbDecoderOptions *options)
{
  /* What a loader may still open after its initialisation: fonts, for the
   * text of SVG images. Nothing else, and nothing writable. */
  static const char * const readable[] = {
    "/etc/fonts",
    "/usr/share/fonts",
    "/var/cache/fontconfig",
  };
  AforkSandbox *sandbox = afork_sandbox_new ();

  for (gsize i = 0; i < G_N_ELEMENTS (readable); i++)
    if (g_file_test (readable[i], G_FILE_TEST_IS_DIR))
      afork_sandbox_allow_read (sandbox, readable[i]);
  afork_sandbox_set_network (sandbox, FALSE);
  afork_sandbox_set_exec (sandbox, FALSE);
  afork_sandbox_set_memory_limit (sandbox, options->memory_limit);
  /* Where the kernel lacks a layer, decode with the others rather than
   * not at all. */
  afork_sandbox_set_best_effort (sandbox, TRUE);

  return sandbox;
}

static gboolean
setup_pool (ThumbDecoder  *self,
            GError       **error)
{
  g_autoptr(AforkProcess) template = NULL;
  g_autoptr(AforkSandbox) sandbox = NULL;
  g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func (g_free);

  if (g_getenv ("AFORK_SERVER") == NULL && running_from_build_tree ())
    afork_set_server_path (THUMB_SERVER_BUILD_PATH);

  template = afork_process_new (error);
  if (template == NULL)
    return FALSE;

  if (self->crash_marker != NULL)
    g_ptr_array_add (args, g_strconcat ("crash-marker=", self->crash_marker, NULL));
  if (self->hang_marker != NULL)
    g_ptr_array_add (args, g_strconcat ("hang-marker=", self->hang_marker, NULL));
  g_ptr_array_add (args, NULL);

  afork_process_require (template, worker_module_path ());
  afork_process_call (template, "afork_thumbnailer_init", (const char * const *) args->pdata);
  sandbox = make_sandbox (&self->options);
  afork_process_sandbox (template, sandbox);

  self->pool = afork_pool_new (template);
  afork_pool_set_max_workers (self->pool, self->options.jobs);
  afork_pool_set_max_calls_per_worker (self->pool, 1);
  afork_pool_set_call_timeout (self->pool, self->options.timeout_ms);

  return TRUE;
}

ThumbDecoder *
thumb_decoder_new (const ThumbDecoderOptions  *options,
                   GError                    **error)
{
  g_autoptr(ThumbDecoder) self = g_object_new (THUMB_TYPE_DECODER, NULL);

  self->options = *options;
  self->options.jobs = MAX (1, options->jobs);
  /* The hooks stop the program itself when it decodes in-process: they
   * are for workers only. */
  self->crash_marker = g_strdup (options->crash_marker);
  self->hang_marker = g_strdup (options->hang_marker);
  self->options.crash_marker = self->crash_marker;
  self->options.hang_marker = self->hang_marker;

  if (!setup_pool (self, error))
    return NULL;

  return g_steal_pointer (&self);
}

const char *
thumb_decoder_describe (ThumbDecoder *self)
{
  g_return_val_if_fail (THUMB_IS_DECODER (self), NULL);

  return _("a sandboxed process per image");
}

/* A call, kept to be made again on a new pool. */
typedef struct
{
  GVariant    *parameters;
  GUnixFDList *fd_list;
  gboolean     again;
} PoolCall;

static void
pool_call_free (PoolCall *call)
{
  g_variant_unref (call->parameters);
  g_object_unref (call->fd_list);
  g_free (call);
}

static void pool_call_done (GObject      *source,
                            GAsyncResult *result,
                            gpointer      user_data);

static void
pool_call_start (ThumbDecoder *self,
                 GTask        *task)
{
  PoolCall *call = g_task_get_task_data (task);
  GError *error = NULL;

  /* Its pool could not be made again: try once more. */
  if (self->pool == NULL && !setup_pool (self, &error))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED,
                               _("The workers cannot decode: %s"), error->message);
      g_error_free (error);
      g_object_unref (task);
      return;
    }

  afork_pool_call_with_fds_async (self->pool, "afork_thumbnailer_decode",
                                  call->parameters, call->fd_list,
                                  g_task_get_cancellable (task), pool_call_done, task);
}

/* The pool's template went (killed from outside, the out-of-memory
 * killer): not the image's fault. The first call to hear it makes the
 * pool again, and each call that was on the old pool is made once more
 * on the new one. */
static gboolean
pool_call_again (ThumbDecoder *self,
                 AforkPool    *pool,
                 GTask        *task,
                 GError      **error)
{
  PoolCall *call = g_task_get_task_data (task);

  /* The worker that died may have read some of the file: the next
   * starts from the beginning, or the call is not made again. */
  if (call->again || lseek (g_unix_fd_list_peek_fds (call->fd_list, NULL)[0], 0, SEEK_SET) != 0)
    return FALSE;
  call->again = TRUE;

  if (self->pool == pool)
    {
      g_autoptr(GError) local_error = NULL;

      g_clear_object (&self->pool);
      if (!setup_pool (self, &local_error))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
    }

  pool_call_start (self, task);

  return TRUE;
}

static void
pool_call_done (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ThumbDecoder *self = g_task_get_source_object (task);
  GError *error = NULL;
  GVariant *reply;

  reply = afork_pool_call_with_fds_finish (AFORK_POOL (source), NULL, result, &error);
  if (reply == NULL && g_error_matches (error, AFORK_ERROR, AFORK_ERROR_TEMPLATE_EXITED))
    {
      GError *setup_error = NULL;

      if (g_task_return_error_if_cancelled (task))
        {
          g_error_free (error);
          return;
        }
      if (pool_call_again (self, AFORK_POOL (source), task, &setup_error))
        {
          g_error_free (error);
          g_steal_pointer (&task);
          return;
        }
      if (setup_error != NULL)
        {
          g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED,
                                   _("The workers cannot decode: %s"), setup_error->message);
          g_error_free (setup_error);
          g_error_free (error);
          return;
        }
    }

  if (reply == NULL && error->domain == AFORK_ERROR && error->code != AFORK_ERROR_CHILD_EXITED)
    {
      /* Not the image's fault (no server, a missing module, a sandbox the
       * kernel refuses): no fail entry for it. */
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED,
                               _("The workers cannot decode: %s"), error->message);
      g_error_free (error);
    }
  else if (reply == NULL)
    g_task_return_error (task, error);
  else if (!g_variant_is_of_type (reply, G_VARIANT_TYPE (THUMB_DECODE_REPLY_TYPE)))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                               _("The worker replied with a value of type %s"),
                               g_variant_get_type_string (reply));
      g_variant_unref (reply);
    }
  else
    g_task_return_pointer (task, reply, (GDestroyNotify) g_variant_unref);
}

/* Takes @fd, the image opened for reading. */
void
thumb_decoder_decode_async (ThumbDecoder        *self,
                            int                  fd,
                            guint                max_side,
                            GVariant            *keys,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (THUMB_IS_DECODER (self));
  g_return_if_fail (fd >= 0);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, thumb_decoder_decode_async);

  {
    PoolCall *call = g_new0 (PoolCall, 1);

    call->fd_list = g_unix_fd_list_new_from_array (&fd, 1);
    call->parameters = g_variant_ref_sink (g_variant_new ("(hu@a{ss})", 0, max_side, keys));
    g_task_set_task_data (task, call, (GDestroyNotify) pool_call_free);
    pool_call_start (self, g_steal_pointer (&task));
  }
}

GVariant *
thumb_decoder_decode_finish (ThumbDecoder  *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == thumb_decoder_decode_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
