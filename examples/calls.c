/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A pool of workers that count words: each call sends a GVariant and gets
 * one back, events arrive before the reply, and a worker that crashes
 * costs its call alone (AnyEvent::Fork::RPC and ::Pool in one object). */
#include <afork/afork.h>

#include <glib/gi18n.h>
#include <locale.h>

#include "example-common.h"

static const char *texts[] = {
  "the quick brown fox",
  "jumps over the lazy dog",
  "a pool of workers forked from one template",
};

static GMainLoop *loop;
static guint pending;
static int status = 0;

static void
progress_cb (AforkPool  *pool,
             const char *name,
             GVariant   *value,
             gpointer    user_data)
{
  g_autofree char *text = g_variant_print (value, FALSE);

  (void) pool;
  (void) user_data;
  g_print ("event %s %s\n", name, text);
}

static void
counted_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = afork_pool_call_finish (AFORK_POOL (object), result, &error);
  const char *text = user_data;
  guint32 n;

  if (reply == NULL)
    {
      g_printerr ("%s\n", error->message);
      status = 1;
    }
  else
    {
      g_variant_get (reply, "(u)", &n);
      g_print (_("“%s”: %u words\n"), text, n);
    }

  if (--pending == 0)
    g_main_loop_quit (loop);
}

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) template_process = NULL;
  g_autoptr(AforkPool) pool = NULL;
  g_autoptr(GVariant) reply = NULL;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  example_use_build_tree ();

  /* The template loads the module once; every worker is a fork of it. */
  template_process = afork_process_new (&error);
  if (template_process == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  afork_process_require (template_process,
                         example_module (EXAMPLE_CALLS_MODULE_NAME, EXAMPLE_CALLS_MODULE_PATH));
  pool = afork_pool_new (template_process);
  g_signal_connect (pool, "event::progress", G_CALLBACK (progress_cb), NULL);

  loop = g_main_loop_new (NULL, FALSE);
  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      pending++;
      afork_pool_call_async (pool, "example_count_words", g_variant_new ("(s)", texts[i]),
                             NULL, counted_cb, (gpointer) texts[i]);
    }
  g_main_loop_run (loop);
  g_main_loop_unref (loop);

  /* A worker that crashes fails its call, and only that one. */
  reply = afork_pool_call (pool, "example_crash", NULL, NULL, &error);
  if (reply != NULL || !g_error_matches (error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED))
    status = 1;
  else
    g_print (_("crash: %s\n"), error->message);
  g_clear_error (&error);

  reply = afork_pool_call (pool, "example_count_words", g_variant_new ("(s)", "still serving"),
                           NULL, &error);
  if (reply == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  {
    guint32 n;

    g_variant_get (reply, "(u)", &n);
    g_print (_("after the crash: %u words\n"), n);
  }

  return status;
}
