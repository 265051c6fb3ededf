/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The references of the thumbnailer benchmark: the same work as
 * afork-thumbnailer (decode at scale, encode a PNG with the spec's keys,
 * write it under the MD5 of the URI) with gdk-pixbuf, no isolation at all,
 * after the same preparation as afork-thumbnailer's template
 * (thumb_decode_init (): every loader, the MIME database, iconv):
 *
 *   thumbnailer-inprocess JOBS SIZE OUTDIR FILE…
 *       in JOBS threads of one process: the speed limit;
 *   thumbnailer-inprocess --fork JOBS SIZE OUTDIR FILE…
 *       in a new process per image, forked from this single-threaded
 *       process. JOBS children decode at once, and JOBS more are forked
 *       ahead and wait for a file, each having prepared huge pages as
 *       afork-thumbnailer's workers do; a child reports its image done
 *       before it exits, so that the next image starts while it exits.
 *       No sandbox, no socket to a parent that writes the file, no
 *       descriptor passed: fresh processes with nothing else on top.
 *
 * Prints "N images in S s, F failed". */
#include <gdk-pixbuf/gdk-pixbuf.h>

#include "thumbnailer-decode.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int size;
static const char *outdir;
static gint failures;

/* Returns whether a thumbnail of @file was written. */
static gboolean
thumbnail_file (const char *file)
{
  /* The URI of a relative path is that of its absolute form. */
  g_autofree char *path = g_canonicalize_filename (file, NULL);
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
    return FALSE;
  md5 = g_compute_checksum_for_string (G_CHECKSUM_MD5, uri, -1);
  base = g_strconcat (md5, ".png", NULL);
  out = g_build_filename (outdir, base, NULL);
  tmp = g_strconcat (out, ".tmp", NULL);
  mtime = g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) st.st_mtime);

  pixbuf = gdk_pixbuf_new_from_file_at_scale (path, size, size, TRUE, &error);
  if (pixbuf != NULL)
    oriented = gdk_pixbuf_apply_embedded_orientation (pixbuf);
  return oriented != NULL &&
         gdk_pixbuf_save (oriented, tmp, "png", &error,
                          "tEXt::Thumb::URI", uri, "tEXt::Thumb::MTime", mtime, NULL) &&
         rename (tmp, out) == 0;
}

static void
thumbnail_one (gpointer data,
               G_GNUC_UNUSED gpointer user_data)
{
  if (!thumbnail_file (data))
    g_atomic_int_inc (&failures);
}

/* --fork ------------------------------------------------------------- */

typedef struct
{
  pid_t pid;
  int   command_fd;   /* the parent writes the index of the child's file */
} Spare;

typedef struct
{
  pid_t pid;
  char  ok;
} Done;

/* A child forked ahead: it waits for the index of its file, makes the
 * thumbnail, says so on @done_fd, and exits. */
G_GNUC_NORETURN static void
spare_main (int     command_fd,
            int     done_fd,
            char  **files)
{
  Done done = { getpid (), 0 };
  int index;

  thumb_decode_use_huge_pages ();
  if (read (command_fd, &index, sizeof index) != sizeof index)
    _exit (0);  /* no file left for it */
  done.ok = thumbnail_file (files[index]);
  if (write (done_fd, &done, sizeof done) != sizeof done)
    _exit (1);
  _exit (done.ok ? 0 : 1);
}

static gboolean
fork_spare (GArray  *spares,
            int      done_fd,
            char   **files)
{
  Spare spare;
  int command[2];

  if (pipe2 (command, O_CLOEXEC) != 0)
    return FALSE;
  spare.pid = fork ();
  if (spare.pid < 0)
    {
      close (command[0]);
      close (command[1]);
      return FALSE;
    }
  if (spare.pid == 0)
    {
      /* The other children's command pipes are not this one's. */
      for (guint i = 0; i < spares->len; i++)
        close (g_array_index (spares, Spare, i).command_fd);
      close (command[1]);
      spare_main (command[0], done_fd, files);
    }
  close (command[0]);
  spare.command_fd = command[1];
  g_array_append_val (spares, spare);
  return TRUE;
}

/* Takes in the children's reports that are there. */
static void
read_done (GHashTable *busy,
           int         done_fd)
{
  struct pollfd pfd = { done_fd, POLLIN, 0 };
  Done done;

  while (poll (&pfd, 1, 0) == 1 && read (done_fd, &done, sizeof done) == sizeof done)
    if (g_hash_table_remove (busy, GINT_TO_POINTER (done.pid)) && !done.ok)
      failures++;
}

/* Reaps children; one that decoded and ended without a report (its
 * report, written before it exits, is in the pipe if it made one) counts
 * as a failure. */
static void
reap (GHashTable *busy,
      int         done_fd,
      int         options)
{
  int status;
  pid_t pid;

  while ((pid = waitpid (-1, &status, options)) > 0)
    if (g_hash_table_contains (busy, GINT_TO_POINTER (pid)))
      {
        read_done (busy, done_fd);
        if (g_hash_table_remove (busy, GINT_TO_POINTER (pid)))
          failures++;
      }
}

/* Hands a file to each child ahead, as long as fewer than @jobs decode. */
static void
dispatch (GArray     *spares,
          GHashTable *busy,
          int         jobs,
          int        *next,
          int         n_files)
{
  while (*next < n_files && spares->len > 0 && g_hash_table_size (busy) < (guint) jobs)
    {
      Spare spare = g_array_index (spares, Spare, 0);

      g_array_remove_index (spares, 0);
      if (write (spare.command_fd, next, sizeof *next) != sizeof *next)
        failures++;
      else
        g_hash_table_add (busy, GINT_TO_POINTER (spare.pid));
      close (spare.command_fd);
      (*next)++;
    }
}

static void
fork_each (int    jobs,
           char **files,
           int    n_files)
{
  g_autoptr(GArray) spares = g_array_new (FALSE, FALSE, sizeof (Spare));
  g_autoptr(GHashTable) busy = g_hash_table_new (NULL, NULL);
  int done_pipe[2];
  int next = 0;

  if (pipe2 (done_pipe, O_CLOEXEC) != 0)
    {
      failures = n_files;
      return;
    }

  while (next < n_files || g_hash_table_size (busy) > 0)
    {
      struct pollfd pfd = { done_pipe[0], POLLIN, 0 };

      /* A file to each child ahead, then as many forked again while
       * the others decode. */
      dispatch (spares, busy, jobs, &next, n_files);
      while (spares->len < (guint) MIN (jobs, n_files - next) &&
             fork_spare (spares, done_pipe[1], files))
        ;
      if (next < n_files && spares->len == 0 && g_hash_table_size (busy) == 0)
        {
          /* fork () failed: the files left are not made. */
          failures += n_files - next;
          break;
        }
      dispatch (spares, busy, jobs, &next, n_files);

      /* A child that dies without a word is found by waitpid () within
       * 100 ms. */
      if (g_hash_table_size (busy) == 0)
        continue;
      if (poll (&pfd, 1, 100) == 1)
        read_done (busy, done_pipe[0]);
      reap (busy, done_pipe[0], WNOHANG);
    }

  /* Spares left over read the end of their pipe and exit. */
  for (guint i = 0; i < spares->len; i++)
    close (g_array_index (spares, Spare, i).command_fd);
  reap (busy, done_pipe[0], 0);
  close (done_pipe[0]);
  close (done_pipe[1]);
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

  /* Prepared before the clock starts, as afork-thumbnailer's template. */
  thumb_decode_init ();

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
