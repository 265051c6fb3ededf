/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* afork-thumbnailer: thumbnails of the freedesktop Thumbnail Managing
 * Standard, every image decoded in its own sandboxed process.
 *
 *   afork-thumbnailer [--size=normal|large|x-large|xx-large] [--jobs=N]
 *                     [--force] PATH…
 *   afork-thumbnailer --dbus [--idle-timeout=SECONDS]
 *
 * Directories are walked recursively; symbolic links to files are
 * thumbnailed under their own URI, as a file manager asks for them;
 * symbolic links to directories met while walking are not followed. */
#include "config.h"

#include "thumbnailer-decoder.h"
#include "thumbnailer-factory.h"
#include "thumbnailer-service.h"
#include "thumbnailer-spec.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <locale.h>

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  ThumbFactory *factory;
  GMainLoop *loop;
  guint total;
  guint done;
  guint made;
  guint up_to_date;
  guint failed;
  gboolean progress;
} Run;

static char *opt_size = NULL;
static int opt_jobs = 0;
static gboolean opt_force = FALSE;
static gboolean opt_dbus = FALSE;
static int opt_idle_timeout = 30;
static double opt_timeout = 10.0;
static int opt_memory_limit = -1;
static char *opt_crash_marker = NULL;
static char *opt_hang_marker = NULL;
static char **opt_paths = NULL;

static const GOptionEntry entries[] = {
  { "size", 's', 0, G_OPTION_ARG_STRING, &opt_size,
    N_("Thumbnail size: normal (128), large (256), x-large (512) or xx-large (1024)"), N_("SIZE") },
  { "jobs", 'j', 0, G_OPTION_ARG_INT, &opt_jobs,
    N_("Images decoded at once (default: the number of CPUs)"), N_("N") },
  { "force", 'f', 0, G_OPTION_ARG_NONE, &opt_force,
    N_("Make thumbnails that are up to date or failed before again"), NULL },
  { "dbus", 0, 0, G_OPTION_ARG_NONE, &opt_dbus,
    N_("Serve org.freedesktop.thumbnails.Thumbnailer1 on the session bus"), NULL },
  { "idle-timeout", 0, 0, G_OPTION_ARG_INT, &opt_idle_timeout,
    N_("With --dbus, exit after this many seconds without work (default 30)"), N_("SECONDS") },
  { "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &opt_timeout,
    N_("Give up on an image after this many seconds (default 10, 0 for none)"), N_("SECONDS") },
  { "memory-limit", 0, 0, G_OPTION_ARG_INT, &opt_memory_limit,
    N_("Address space of a worker in MiB (default 1024, 0 for none)"), N_("MIB") },
  { "test-crash-marker", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &opt_crash_marker,
    "Crash the worker of any image that starts with these bytes (tests)", NULL },
  { "test-hang-marker", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &opt_hang_marker,
    "Hang the worker of any image that starts with these bytes (tests)", NULL },
  { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &opt_paths, NULL, N_("PATH…") },
  G_OPTION_ENTRY_NULL
};

static void
print_progress (Run *run)
{
  if (!run->progress)
    return;
  fprintf (stderr, "\r%u/%u", run->done, run->total);
  if (run->done == run->total)
    fputs ("\r\033[K", stderr);
  fflush (stderr);
}

static void
make_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Run *run = user_data;
  g_autoptr(GError) error = NULL;
  ThumbResult value;

  value = thumb_factory_make_finish (THUMB_FACTORY (source), result, &error);
  switch (value)
    {
    case THUMB_RESULT_MADE:
      run->made++;
      break;
    case THUMB_RESULT_UP_TO_DATE:
      run->up_to_date++;
      break;
    case THUMB_RESULT_FAILED_BEFORE:
      run->failed++;
      break;
    case THUMB_RESULT_FAILED:
    case THUMB_RESULT_ERROR:
    default:
      run->failed++;
      if (run->progress)
        fputs ("\r\033[K", stderr);
      g_printerr ("afork-thumbnailer: %s\n", error != NULL ? error->message : "?");
      break;
    }

  run->done++;
  print_progress (run);
  if (run->done == run->total)
    g_main_loop_quit (run->loop);
}

static void
add_uri (Run        *run,
         const char *path,
         ThumbSize   size)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = thumb_uri_for_path (path, &error);

  if (uri == NULL)
    {
      g_printerr ("afork-thumbnailer: %s\n", error->message);
      run->failed++;
      return;
    }

  run->total++;
  thumb_factory_make_async (run->factory, uri, size, opt_force, NULL, make_done, run);
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static void
walk (GPtrArray  *files,
      const char *dir_path,
      const char *cache_dir)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (g_strcmp0 (dir_path, cache_dir) == 0)
    return;

  dir = g_dir_open (dir_path, 0, &error);
  if (dir == NULL)
    {
      g_printerr ("afork-thumbnailer: %s\n", error->message);
      return;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir_path, names->pdata[i], NULL);
      GStatBuf st;

      if (g_lstat (path, &st) == 0 && S_ISDIR (st.st_mode))
        walk (files, path, cache_dir);
      else
        g_ptr_array_add (files, g_steal_pointer (&path));
    }
}

static int
run_command_line (ThumbFactory *factory,
                  ThumbSize     size,
                  const char   *cache_dir)
{
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Run run = { 0 };
  gint64 start;
  double seconds;

  run.factory = factory;
  run.loop = loop;
  run.progress = isatty (STDERR_FILENO);

  for (guint i = 0; opt_paths[i] != NULL; i++)
    {
      g_autofree char *absolute = g_canonicalize_filename (opt_paths[i], NULL);
      GStatBuf st;

      if (g_stat (absolute, &st) == 0 && S_ISDIR (st.st_mode))
        walk (files, absolute, cache_dir);
      else if (g_lstat (absolute, &st) == 0)
        g_ptr_array_add (files, g_steal_pointer (&absolute));
      else
        {
          g_printerr (_("afork-thumbnailer: %s: no such file\n"), opt_paths[i]);
          run.failed++;
        }
    }

  start = g_get_monotonic_time ();
  for (guint i = 0; i < files->len; i++)
    add_uri (&run, files->pdata[i], size);
  if (run.done < run.total)
    g_main_loop_run (loop);
  seconds = (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;

  /* TRANSLATORS: the summary line: thumbnails made, up to date, files
   * that failed, seconds, thumbnails made per second */
  g_print (_("%u made, %u up to date, %u failed, %.2f s, %.1f images/s\n"),
           run.made, run.up_to_date, run.failed, seconds,
           seconds > 0 ? run.made / seconds : 0.0);

  return run.failed > 0 ? 1 : 0;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ThumbDecoder) decoder = NULL;
  g_autoptr(ThumbFactory) factory = NULL;
  g_autofree char *cache_dir = NULL;
  ThumbDecoderOptions options = { 0 };
  ThumbSize size = THUMB_SIZE_NORMAL;
  int status;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  context = g_option_context_new (_("PATH…"));
  g_option_context_set_summary (context,
                                _("Make the thumbnails of images, each decoded in a sandboxed process of its own."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("afork-thumbnailer: %s\n", error->message);
      return 2;
    }

  if (opt_size != NULL && !thumb_size_from_name (opt_size, &size))
    {
      g_printerr (_("afork-thumbnailer: unknown size “%s” (normal, large, x-large or xx-large)\n"),
                  opt_size);
      return 2;
    }
  if (opt_jobs < 0 || opt_idle_timeout < 0 || opt_timeout < 0 || opt_memory_limit < -1)
    {
      g_printerr (_("afork-thumbnailer: --jobs, --idle-timeout, --timeout and --memory-limit take positive numbers\n"));
      return 2;
    }
  if (!opt_dbus && (opt_paths == NULL || opt_paths[0] == NULL))
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);

      g_printerr ("%s", help);
      return 2;
    }

  options.jobs = opt_jobs > 0 ? (guint) opt_jobs : g_get_num_processors ();
  options.timeout_ms = (guint) (opt_timeout * 1000);
  if (opt_memory_limit >= 0)
    options.memory_limit = (guint64) opt_memory_limit * 1024 * 1024;
  else
    {
#if defined(__SANITIZE_ADDRESS__)
      /* AddressSanitizer reserves terabytes of address space. */
      options.memory_limit = 0;
#else
      options.memory_limit = G_GUINT64_CONSTANT (1024) * 1024 * 1024;
#endif
    }
  options.crash_marker = opt_crash_marker;
  options.hang_marker = opt_hang_marker;

  decoder = thumb_decoder_new (&options, &error);
  if (decoder == NULL)
    {
      g_printerr (_("afork-thumbnailer: cannot start the workers: %s\n"), error->message);
      return 1;
    }
  g_debug ("decoding %s", thumb_decoder_describe (decoder));

  cache_dir = thumb_get_cache_dir ();
  /* Two calls per worker: the pool queues the second, which then goes
   * to the next worker without a round trip through the factory. */
  factory = thumb_factory_new (decoder, cache_dir, options.jobs * 2);

  if (opt_dbus)
    status = thumb_service_run (factory, (guint) opt_idle_timeout);
  else
    status = run_command_line (factory, size, cache_dir);

  g_strfreev (opt_paths);
  g_free (opt_size);
  g_free (opt_crash_marker);
  g_free (opt_hang_marker);

  return status;
}
