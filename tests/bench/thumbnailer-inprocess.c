/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The references of the thumbnailer benchmark: the same work as
 * afork-thumbnailer (decode at scale, encode a PNG with the spec's keys,
 * write it under the MD5 of the URI) with gdk-pixbuf, no isolation at all:
 *
 *   thumbnailer-inprocess JOBS SIZE OUTDIR FILE…
 *       in JOBS threads of one process: the speed limit;
 *   thumbnailer-inprocess --fork JOBS SIZE OUTDIR FILE…
 *       in a fresh process per image, at its cheapest: fork() from this
 *       warm, single-threaded process (loaders loaded), up to JOBS
 *       children at once, each preparing huge pages as afork-thumbnailer's
 *       workers do, then doing the whole work and exiting. No sandbox, no
 *       socket, nothing sent back: the most any design that gives every
 *       image a new process can reach on this machine.
 *
 * Prints "N images in S s, F failed". */
#include <gdk-pixbuf/gdk-pixbuf.h>

#include "thumbnailer-decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int size;
static const char *outdir;
static gint failures;

static void
thumbnail_one (gpointer data,
               G_GNUC_UNUSED gpointer user_data)
{
  /* The URI of a relative path is that of its absolute form. */
  g_autofree char *path = g_canonicalize_filename (data, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GdkPixbuf) pixbuf = NULL;
  g_autoptr(GdkPixbuf) oriented = NULL;
  g_autofree char *uri = g_filename_to_uri (path, NULL, NULL);
  g_autofree char *md5 = NULL;
  g_autofree char *base = NULL;
  g_autofree char *out = NULL;
  g_autofree char *tmp = NULL;
  g_autofree char *mtime = NULL;
  struct stat st;

  if (uri == NULL || stat (path, &st) < 0)
    {
      g_atomic_int_inc (&failures);
      return;
    }
  md5 = g_compute_checksum_for_string (G_CHECKSUM_MD5, uri, -1);
  base = g_strconcat (md5, ".png", NULL);
  out = g_build_filename (outdir, base, NULL);
  tmp = g_strconcat (out, ".tmp", NULL);
  mtime = g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) st.st_mtime);

  pixbuf = gdk_pixbuf_new_from_file_at_scale (path, size, size, TRUE, &error);
  if (pixbuf != NULL)
    oriented = gdk_pixbuf_apply_embedded_orientation (pixbuf);
  if (oriented == NULL ||
      !gdk_pixbuf_save (oriented, tmp, "png", &error,
                        "tEXt::Thumb::URI", uri, "tEXt::Thumb::MTime", mtime, NULL) ||
      rename (tmp, out) < 0)
    g_atomic_int_inc (&failures);
}

/* --fork: a child per image, up to @jobs at once. */
static void
fork_each (int    jobs,
           char **files,
           int    n_files)
{
  int running = 0;

  for (int i = 0; i < n_files || running > 0;)
    {
      int status;

      if (i < n_files && running < jobs)
        {
          pid_t pid = fork ();

          if (pid == 0)
            {
              thumb_decode_use_huge_pages ();
              thumbnail_one (files[i], NULL);
              _exit (g_atomic_int_get (&failures) > 0 ? 1 : 0);
            }
          if (pid < 0)
            {
              g_atomic_int_inc (&failures);
              return;
            }
          running++;
          i++;
          continue;
        }
      if (wait (&status) < 0)
        return;
      running--;
      if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        g_atomic_int_inc (&failures);
    }
}

int
main (int   argc,
      char *argv[])
{
  GThreadPool *pool;
  gint64 start;
  double seconds;
  int jobs;
  gboolean fork_mode = FALSE;

  if (argc > 1 && g_str_equal (argv[1], "--fork"))
    {
      fork_mode = TRUE;
      argv++;
      argc--;
    }
  if (argc < 5)
    {
      g_printerr ("usage: %s JOBS SIZE OUTDIR FILE…\n", argv[0]);
      return 2;
    }
  jobs = atoi (argv[1]);
  size = atoi (argv[2]);
  outdir = argv[3];
  if (jobs <= 0 || size <= 0 || g_mkdir_with_parents (outdir, 0700) < 0)
    return 2;

  /* Loaders are initialised before the clock starts, as in a template. */
  g_slist_free (gdk_pixbuf_get_formats ());

  start = g_get_monotonic_time ();
  if (fork_mode)
    fork_each (jobs, argv + 4, argc - 4);
  else
    {
      pool = g_thread_pool_new (thumbnail_one, NULL, jobs, TRUE, NULL);
      for (int i = 4; i < argc; i++)
        g_thread_pool_push (pool, argv[i], NULL);
      g_thread_pool_free (pool, FALSE, TRUE);
    }
  seconds = (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;

  printf ("%d images in %.3f s, %d failed\n", argc - 4, seconds, failures);
  return failures > 0 ? 1 : 0;
}
