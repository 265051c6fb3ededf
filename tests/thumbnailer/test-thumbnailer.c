/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* afork-thumbnailer's command line, through the real program: every format
 * with a loader, the spec's names and keys, the MTime rule, every size,
 * and hostile input failing alone while the other files are made. */
#include "thumbnailer-test-util.h"

#include <glib/gstdio.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static void
test_formats (void)
{
  ThumbTestDir dir;
  g_autoptr(GPtrArray) checks = g_ptr_array_new_with_free_func (g_free);
  static const struct {
    const char *format;    /* gdk-pixbuf's name, to save or to look for */
    const char *name;
    const char *mime_type;
  } saved[] = {
    { "jpeg", "photo.jpg", "image/jpeg" },
    { "png", "drawing.png", "image/png" },
    { "bmp", "bitmap.bmp", "image/bmp" },
    { "tiff", "scan.tiff", "image/tiff" },
    { "webp", "web.webp", "image/webp" },
  };
  g_autofree char *gif = NULL;
  g_autofree char *svg = NULL;
  int status;

  thumb_test_dir_init (&dir);

  for (gsize i = 0; i < G_N_ELEMENTS (saved); i++)
    {
      g_autofree char *path = NULL;

      if (!thumb_test_have_format (saved[i].format))
        {
          g_test_message ("no gdk-pixbuf loader for %s: not tested", saved[i].format);
          continue;
        }
      path = thumb_test_write_image (dir.images, saved[i].name, saved[i].format, 640, 480);
      g_ptr_array_add (checks, g_steal_pointer (&path));
    }
  if (thumb_test_have_format ("gif"))
    gif = thumb_test_write_gif (dir.images, "tiny.gif");
  else
    g_test_message ("no gdk-pixbuf loader for gif: not tested");
  if (thumb_test_have_format ("svg"))
    svg = thumb_test_write_svg (dir.images, "vector.svg", 400, 200);
  else
    g_test_message ("no gdk-pixbuf loader for svg (librsvg2-common): not tested");

  status = thumb_test_run (&dir, NULL, NULL, "--jobs=2", dir.images, NULL);
  g_assert_cmpint (status, ==, 0);

  for (gsize i = 0, j = 0; i < G_N_ELEMENTS (saved); i++)
    {
      if (!thumb_test_have_format (saved[i].format))
        continue;
      thumb_test_check_thumb (&dir, "normal", checks->pdata[j++], 128, 96, 640, 480,
                              saved[i].mime_type);
    }
  /* Never upscaled. */
  if (gif != NULL)
    thumb_test_check_thumb (&dir, "normal", gif, 1, 1, 1, 1, "image/gif");
  if (svg != NULL)
    thumb_test_check_thumb (&dir, "normal", svg, 128, 64, 400, 200, "image/svg+xml");

  thumb_test_dir_clear (&dir);
}

/* The URI is escaped as the spec says, and the MD5 is that of the
 * escaped URI. */
static void
test_names (void)
{
  static const struct {
    const char *name;
    const char *escaped;
  } names[] = {
    { "with space.jpg", "with%20space.jpg" },
    { "hash#1.jpg", "hash%231.jpg" },
    { "100%.jpg", "100%25.jpg" },
    { "été 写真.jpg", "%C3%A9t%C3%A9%20%E5%86%99%E7%9C%9F.jpg" },
  };
  ThumbTestDir dir;
  g_autofree char *dir_uri = NULL;

  thumb_test_dir_init (&dir);
  dir_uri = thumb_test_uri (dir.images);

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    g_free (thumb_test_write_image (dir.images, names[i].name, "jpeg", 300, 200));

  g_assert_cmpint (thumb_test_run (&dir, NULL, NULL, dir.images, NULL), ==, 0);

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = g_build_filename (dir.images, names[i].name, NULL);
      g_autofree char *expected_uri = g_strconcat (dir_uri, "/", names[i].escaped, NULL);
      g_autofree char *md5 = g_compute_checksum_for_string (G_CHECKSUM_MD5, expected_uri, -1);
      g_autofree char *base = g_strconcat (md5, ".png", NULL);
      g_autofree char *thumb = g_build_filename (dir.cache_home, "thumbnails", "normal", base, NULL);
      g_autoptr(GdkPixbuf) pixbuf = NULL;
      g_autoptr(GError) error = NULL;

      pixbuf = gdk_pixbuf_new_from_file (thumb, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (gdk_pixbuf_get_option (pixbuf, "tEXt::Thumb::URI"), ==, expected_uri);
      thumb_test_check_thumb (&dir, "normal", path, 128, 85, 300, 200, "image/jpeg");
    }

  thumb_test_dir_clear (&dir);
}

/* A symbolic link is thumbnailed under its own URI, as a file manager
 * asks for it; the MTime is its target's. */
static void
test_symlink (void)
{
  ThumbTestDir dir;
  g_autofree char *target = NULL;
  g_autofree char *link = NULL;
  g_autofree char *target_thumb = NULL;

  thumb_test_dir_init (&dir);
  target = thumb_test_write_image (dir.images, "target.png", "png", 200, 100);
  link = g_build_filename (dir.images, "link.png", NULL);
  g_assert_cmpint (symlink ("target.png", link), ==, 0);

  g_assert_cmpint (thumb_test_run (&dir, NULL, NULL, link, NULL), ==, 0);
  thumb_test_check_thumb (&dir, "normal", link, 128, 64, 200, 100, "image/png");

  /* Only what was asked for. */
  target_thumb = thumb_test_thumb_path (&dir, "normal", target);
  g_assert_false (g_file_test (target_thumb, G_FILE_TEST_EXISTS));

  thumb_test_dir_clear (&dir);
}

static void
assert_summary (const char *out,
                const char *expected_start)
{
  g_assert_nonnull (out);
  if (!g_str_has_prefix (out, expected_start))
    g_error ("summary “%s” does not start with “%s”", out, expected_start);
}

/* Up to date (same MTime) is skipped; a new MTime or --force makes it
 * again; a fail entry is not retried while the MTime is the same. */
static void
test_mtime (void)
{
  ThumbTestDir dir;
  g_autofree char *photo = NULL;
  g_autofree char *broken = NULL;
  g_autofree char *fail = NULL;
  g_autofree char *thumb = NULL;
  g_autofree char *out = NULL;
  GStatBuf before, after;

  thumb_test_dir_init (&dir);
  photo = thumb_test_write_image (dir.images, "photo.jpg", "jpeg", 320, 240);
  broken = thumb_test_write_bytes (dir.images, "broken.png", "not an image\n", 13);
  thumb_test_set_mtime (photo, 1000000000);
  thumb_test_set_mtime (broken, 1000000000);

  g_assert_cmpint (thumb_test_run (&dir, NULL, &out, dir.images, NULL), ==, 1);
  assert_summary (out, "1 made, 0 up to date, 1 failed");
  thumb_test_check_thumb (&dir, "normal", photo, 128, 96, 320, 240, "image/jpeg");
  thumb_test_check_fail_entry (&dir, broken);

  thumb = thumb_test_thumb_path (&dir, "normal", photo);
  fail = thumb_test_fail_path (&dir, broken);
  g_assert_cmpint (g_stat (thumb, &before), ==, 0);

  /* Same MTime: nothing is made, the fail entry is not retried. */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (thumb_test_run (&dir, NULL, &out, dir.images, NULL), ==, 1);
  assert_summary (out, "0 made, 1 up to date, 1 failed");
  g_assert_cmpint (g_stat (thumb, &after), ==, 0);
  g_assert_cmpint (before.st_ino, ==, after.st_ino);

  /* --force makes both again (the broken one fails again). */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (thumb_test_run (&dir, NULL, &out, "--force", dir.images, NULL), ==, 1);
  assert_summary (out, "1 made, 0 up to date, 1 failed");
  g_assert_cmpint (g_stat (thumb, &after), ==, 0);
  g_assert_cmpint (before.st_ino, !=, after.st_ino);

  /* A new MTime: made again, and the broken file, now an image, too; its
   * fail entry goes. */
  thumb_test_set_mtime (photo, 1000000100);
  g_free (thumb_test_write_image (dir.images, "broken.png", "png", 64, 32));
  thumb_test_set_mtime (broken, 1000000100);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (thumb_test_run (&dir, NULL, &out, dir.images, NULL), ==, 0);
  assert_summary (out, "2 made, 0 up to date, 0 failed");
  thumb_test_check_thumb (&dir, "normal", photo, 128, 96, 320, 240, "image/jpeg");
  thumb_test_check_thumb (&dir, "normal", broken, 64, 32, 64, 32, "image/png");
  g_assert_false (g_file_test (fail, G_FILE_TEST_EXISTS));

  thumb_test_dir_clear (&dir);
}

static void
test_sizes (void)
{
  static const struct {
    const char *name;
    int width, height;
  } sizes[] = {
    { "normal", 128, 96 },
    { "large", 256, 192 },
    { "x-large", 512, 384 },
    { "xx-large", 1024, 768 },
  };
  ThumbTestDir dir;
  g_autofree char *big = NULL;
  g_autofree char *small = NULL;

  thumb_test_dir_init (&dir);
  big = thumb_test_write_image (dir.images, "big.jpg", "jpeg", 1600, 1200);
  small = thumb_test_write_image (dir.images, "small.png", "png", 300, 200);

  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autofree char *option = g_strconcat ("--size=", sizes[i].name, NULL);

      g_assert_cmpint (thumb_test_run (&dir, NULL, NULL, option, dir.images, NULL), ==, 0);
      thumb_test_check_thumb (&dir, sizes[i].name, big, sizes[i].width, sizes[i].height,
                              1600, 1200, "image/jpeg");
      /* Never upscaled. */
      if (sizes[i].width >= 300)
        thumb_test_check_thumb (&dir, sizes[i].name, small, 300, 200, 300, 200, "image/png");
      else
        thumb_test_check_thumb (&dir, sizes[i].name, small, sizes[i].width,
                                (sizes[i].width * 2 + 1) / 3, 300, 200, "image/png");
    }

  g_assert_cmpint (thumb_test_run (&dir, NULL, NULL, "--size=huge", dir.images, NULL), ==, 2);

  thumb_test_dir_clear (&dir);
}

static void
write_good_images (const ThumbTestDir *dir,
                   GPtrArray          *good)
{
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *name = g_strdup_printf ("good-%d.jpg", i);

      g_ptr_array_add (good, thumb_test_write_image (dir->images, name, "jpeg", 400, 300));
    }
}

static void
check_good_images (const ThumbTestDir *dir,
                   GPtrArray          *good)
{
  for (guint i = 0; i < good->len; i++)
    thumb_test_check_thumb (dir, "normal", good->pdata[i], 128, 96, 400, 300, "image/jpeg");
}

/* Each hostile file fails alone, with a fail entry, while the good files
 * of the same run are thumbnailed; nothing blocks or hangs. */
static void
test_hostile (void)
{
  ThumbTestDir dir;
  g_autoptr(GPtrArray) good = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) bad = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *truncated = NULL;
  g_autofree char *whole = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *fifo = NULL;
  g_autofree char *thumb = NULL;
  g_autofree char *fail = NULL;
  gsize length;

  thumb_test_dir_init (&dir);
  write_good_images (&dir, good);

  g_ptr_array_add (bad, thumb_test_write_bytes (dir.images, "empty.png", "", 0));
  g_ptr_array_add (bad, thumb_test_write_bytes (dir.images, "text.png",
                                                "This is not a picture.\n", 23));
  g_ptr_array_add (bad, thumb_test_write_huge_png (dir.images, "huge.png", 60000, 60000));
  fifo = g_build_filename (dir.images, "pipe.png", NULL);
  g_assert_cmpint (mkfifo (fifo, 0644), ==, 0);
  g_ptr_array_add (bad, g_strdup (fifo));

  /* A truncated JPEG: a thumbnail of what is there, or a fail entry. */
  whole = thumb_test_write_image (dir.root, "whole.jpg", "jpeg", 400, 300);
  g_assert_true (g_file_get_contents (whole, &contents, &length, NULL));
  truncated = thumb_test_write_bytes (dir.images, "truncated.jpg", contents, length / 2);

  g_assert_cmpint (thumb_test_run (&dir, NULL, NULL, "--jobs=2", dir.images, NULL), ==, 1);

  check_good_images (&dir, good);
  for (guint i = 0; i < bad->len; i++)
    {
      g_autofree char *bad_thumb = thumb_test_thumb_path (&dir, "normal", bad->pdata[i]);

      g_test_message ("fail entry of %s", (char *) bad->pdata[i]);
      thumb_test_check_fail_entry (&dir, bad->pdata[i]);
      g_assert_false (g_file_test (bad_thumb, G_FILE_TEST_EXISTS));
    }

  thumb = thumb_test_thumb_path (&dir, "normal", truncated);
  fail = thumb_test_fail_path (&dir, truncated);
  if (g_file_test (thumb, G_FILE_TEST_EXISTS))
    thumb_test_check_thumb (&dir, "normal", truncated, 128, 96, 400, 300, "image/jpeg");
  else
    thumb_test_check_fail_entry (&dir, truncated);

  /* The named pipe given by name does not block either. */
  g_assert_cmpint (thumb_test_run (&dir, NULL, NULL, "--force", fifo, NULL), ==, 1);

  thumb_test_dir_clear (&dir);
}

/* An image that crashes its worker fails alone: the run goes on. */
static void
test_crash (void)
{
  static const char marker[] = "AFORK-THUMBNAILER-TEST-CRASH";
  ThumbTestDir dir;
  g_autoptr(GPtrArray) good = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *crash = NULL;
  g_autofree char *out = NULL;

  thumb_test_dir_init (&dir);
  write_good_images (&dir, good);
  crash = thumb_test_write_bytes (dir.images, "crash.png", marker, strlen (marker));

  g_assert_cmpint (thumb_test_run (&dir, NULL, &out, "--test-crash-marker", marker,
                                   dir.images, NULL), ==, 1);
  assert_summary (out, "3 made, 0 up to date, 1 failed");
  check_good_images (&dir, good);
  thumb_test_check_fail_entry (&dir, crash);

  thumb_test_dir_clear (&dir);
}

/* An image whose worker hangs fails alone at the per-image deadline. */
static void
test_hang (void)
{
  static const char marker[] = "AFORK-THUMBNAILER-TEST-HANG";
  ThumbTestDir dir;
  g_autoptr(GPtrArray) good = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *hang = NULL;
  g_autofree char *out = NULL;
  gint64 start;

  thumb_test_dir_init (&dir);
  write_good_images (&dir, good);
  hang = thumb_test_write_bytes (dir.images, "hang.png", marker, strlen (marker));

  start = g_get_monotonic_time ();
  g_assert_cmpint (thumb_test_run (&dir, NULL, &out, "--timeout=2", "--test-hang-marker", marker,
                                   dir.images, NULL), ==, 1);
  g_test_message ("the run took %.1f s", (g_get_monotonic_time () - start) / 1e6);
  assert_summary (out, "3 made, 0 up to date, 1 failed");
  check_good_images (&dir, good);
  thumb_test_check_fail_entry (&dir, hang);

  thumb_test_dir_clear (&dir);
}

/* Workers that cannot start (here, a module that does not exist) are not
 * the images' fault: they fail, without a fail entry. */
static void
test_no_workers (void)
{
  ThumbTestDir dir;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autofree char *photo = NULL;
  g_autofree char *fail = NULL;

  thumb_test_dir_init (&dir);
  photo = thumb_test_write_image (dir.images, "photo.jpg", "jpeg", 64, 64);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_setenv (launcher, "AFORK_THUMBNAILER_MODULE",
                                "/nonexistent/libafork-thumbnailer-worker.so", TRUE);

  g_assert_cmpint (thumb_test_run (&dir, launcher, NULL, photo, NULL), ==, 1);
  fail = thumb_test_fail_path (&dir, photo);
  g_assert_false (g_file_test (fail, G_FILE_TEST_EXISTS));

  thumb_test_dir_clear (&dir);
}

static gboolean
is_descendant (GPid pid,
               GPid ancestor)
{
  for (int depth = 0; depth < 16 && pid > 1; depth++)
    {
      g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);
      g_autofree char *stat = NULL;
      const char *paren;
      char state;
      int ppid;

      if (!g_file_get_contents (path, &stat, NULL, NULL) ||
          (paren = strrchr (stat, ')')) == NULL ||
          sscanf (paren + 1, " %c %d", &state, &ppid) != 2)
        return FALSE;
      if (ppid == ancestor)
        return TRUE;
      pid = ppid;
    }

  return FALSE;
}

/* The processes below @ancestor that are confined: no_new_privs and a
 * seccomp filter, as the sandbox sets them. */
static GArray *
find_confined_descendants (GPid ancestor)
{
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  GArray *found = g_array_new (FALSE, FALSE, sizeof (GPid));
  const char *name;

  while (proc != NULL && (name = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *status = NULL;
      GPid pid = atoi (name);

      if (pid <= 0 || !is_descendant (pid, ancestor))
        continue;
      path = g_strdup_printf ("/proc/%d/status", pid);
      if (g_file_get_contents (path, &status, NULL, NULL) &&
          strstr (status, "\nState:\tZ") == NULL &&
          strstr (status, "\nNoNewPrivs:\t1\n") != NULL &&
          strstr (status, "\nSeccomp:\t2\n") != NULL)
        g_array_append_val (found, pid);
    }

  return found;
}

/* A confined process below @ancestor, or 0 when none is. */
static GPid
find_confined_descendant (GPid ancestor)
{
  g_autoptr(GArray) found = find_confined_descendants (ancestor);

  return found->len > 0 ? g_array_index (found, GPid, 0) : 0;
}

/* The worker decoding an image runs sandboxed: while one hangs on its
 * image, it is found below the program with no_new_privs and a seccomp
 * filter. */
static void
test_sandboxed (void)
{
  static const char marker[] = "AFORK-THUMBNAILER-TEST-HANG";
  ThumbTestDir dir;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *hang = NULL;
  GPid found = 0;
  GPid pid;

  thumb_test_dir_init (&dir);
  hang = thumb_test_write_bytes (dir.images, "hang.png", marker, strlen (marker));

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_subprocess_launcher_setenv (launcher, "XDG_CACHE_HOME", dir.cache_home, TRUE);
  process = g_subprocess_launcher_spawn (launcher, &error, thumb_test_program (),
                                         "--timeout=120", "--test-hang-marker", marker,
                                         hang, NULL);
  g_assert_no_error (error);
  pid = atoi (g_subprocess_get_identifier (process));

  for (int i = 0; i < 600 && !found; i++)
    {
      found = find_confined_descendant (pid);
      if (!found)
        g_usleep (100000);
    }

  /* The worker hangs on purpose: it (and the template, confined too) is
   * killed first, so that it does not outlive the test holding its output
   * open. All the confined processes are found before any is killed: a
   * worker whose template dies first is no longer below the program. */
  for (int i = 0; i < 20; i++)
    {
      g_autoptr(GArray) confined = find_confined_descendants (pid);

      if (confined->len == 0)
        break;
      for (guint j = 0; j < confined->len; j++)
        kill (g_array_index (confined, GPid, j), SIGKILL);
      g_usleep (50000);
    }
  g_subprocess_force_exit (process);
  g_subprocess_wait (process, NULL, NULL);
  g_assert_cmpint (found, >, 0);

  thumb_test_dir_clear (&dir);
}

/* Without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH in the bounding set,
 * root runs the program without the right to read another's files. */
static void
drop_dac_capabilities (G_GNUC_UNUSED gpointer user_data)
{
  if (prctl (PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) < 0 ||
      prctl (PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0) < 0)
    _exit (77);
}

/* A file that cannot be read fails alone. Root reads anything: there the
 * program runs without the capabilities that allow it. */
static void
test_unreadable (void)
{
  ThumbTestDir dir;
  g_autoptr(GPtrArray) good = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autofree char *secret = NULL;
  int status;

  thumb_test_dir_init (&dir);
  write_good_images (&dir, good);
  secret = thumb_test_write_image (dir.images, "secret.png", "png", 64, 64);
  g_assert_cmpint (g_chmod (secret, 0), ==, 0);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  if (getuid () == 0)
    g_subprocess_launcher_set_child_setup (launcher, drop_dac_capabilities, NULL, NULL);

  status = thumb_test_run (&dir, launcher, NULL, dir.images, NULL);
  if (status == 77)
    {
      g_test_skip ("running as root, and the capabilities that let root read any file "
                   "cannot be dropped here");
      thumb_test_dir_clear (&dir);
      return;
    }
  g_assert_cmpint (status, ==, 1);
  check_good_images (&dir, good);
  thumb_test_check_fail_entry (&dir, secret);

  thumb_test_dir_clear (&dir);
}

typedef struct
{
  gint  stop;       /* atomic */
  GPid  killed;     /* the template killed, once */
} TemplateKiller;

/* The owner of a pool worker titled "afork OWNER afork:pool-worker", if
 * @pid is one. */
static GPid
pool_worker_owner (const char *pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/cmdline", pid);
  g_autofree char *cmdline = NULL;
  g_auto(GStrv) words = NULL;
  gint64 owner = 0;
  gsize len;

  if (!g_file_get_contents (path, &cmdline, &len, NULL))
    return 0;
  for (gsize i = 0; i < len; i++)
    if (cmdline[i] == '\0')
      cmdline[i] = ' ';
  words = g_strsplit (g_strstrip (cmdline), " ", -1);
  if (g_strv_length (words) != 3 || !g_str_equal (words[0], "afork") ||
      !g_str_equal (words[2], "afork:pool-worker") ||
      !g_ascii_string_to_signed (words[1], 10, 1, G_MAXINT, &owner, NULL))
    return 0;

  return (GPid) owner;
}

/* The parent of @pid, or 0. */
static GPid
proc_parent (const char *pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/stat", pid);
  g_autofree char *stat = NULL;
  const char *end;
  int ppid = 0;
  char state;

  if (!g_file_get_contents (path, &stat, NULL, NULL) ||
      (end = strrchr (stat, ')')) == NULL ||
      sscanf (end + 1, " %c %d", &state, &ppid) != 2)
    return 0;

  return (GPid) ppid;
}

/* Kills the template of the first pool worker that it sees of an
 * afork-thumbnailer this test started. */
static gpointer
kill_template_thread (gpointer data)
{
  TemplateKiller *killer = data;

  while (!g_atomic_int_get (&killer->stop) && killer->killed == 0)
    {
      g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
      const char *name;

      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL && killer->killed == 0)
        {
          GPid owner = pool_worker_owner (name);
          g_autofree char *comm_path = NULL;
          g_autofree char *comm = NULL;
          GPid template_pid;

          if (owner <= 0)
            continue;
          comm_path = g_strdup_printf ("/proc/%d/comm", (int) owner);
          if (!g_file_get_contents (comm_path, &comm, NULL, NULL) ||
              !g_str_has_prefix (comm, "afork-thumbnail"))
            continue;
          /* This test's thumbnailer, not another program's. */
          {
            g_autofree char *owner_name = g_strdup_printf ("%d", (int) owner);

            if (proc_parent (owner_name) != getpid ())
              continue;
          }
          template_pid = proc_parent (name);
          if (template_pid > 1 && template_pid != owner && kill (template_pid, SIGKILL) == 0)
            killer->killed = template_pid;
        }
      g_usleep (1000);
    }

  return NULL;
}

/* The template of the workers is killed during a run (as the kernel's
 * out-of-memory killer might): not the images' fault. The images being
 * decoded are decoded again by workers of a new template, and the run
 * makes every thumbnail. */
static void
test_template_killed (void)
{
  ThumbTestDir dir;
  g_autoptr(GPtrArray) images = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *out = NULL;
  g_autofree char *expected = NULL;
  TemplateKiller killer = { 0, 0 };
  GThread *thread;
  int status;

  thumb_test_dir_init (&dir);
  for (int i = 0; i < 100; i++)
    {
      g_autofree char *name = g_strdup_printf ("photo-%03d.jpg", i);

      g_ptr_array_add (images, thumb_test_write_image (dir.images, name, "jpeg", 160, 120));
    }

  thread = g_thread_new ("template-killer", kill_template_thread, &killer);
  status = thumb_test_run (&dir, NULL, &out, dir.images, NULL);
  g_atomic_int_set (&killer.stop, 1);
  g_thread_join (thread);

  /* A worker was seen, so the run was under way. */
  g_assert_cmpint (killer.killed, >, 1);
  expected = g_strdup_printf ("%u made, 0 up to date, 0 failed", images->len);
  assert_summary (out, expected);
  g_assert_cmpint (status, ==, 0);
  for (guint i = 0; i < images->len; i++)
    {
      g_autofree char *fail = thumb_test_fail_path (&dir, images->pdata[i]);

      thumb_test_check_thumb (&dir, "normal", images->pdata[i], 128, 96, 160, 120, "image/jpeg");
      g_assert_false (g_file_test (fail, G_FILE_TEST_EXISTS));
    }

  thumb_test_dir_clear (&dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/thumbnailer/formats", test_formats);
  g_test_add_func ("/thumbnailer/names", test_names);
  g_test_add_func ("/thumbnailer/symlink", test_symlink);
  g_test_add_func ("/thumbnailer/mtime", test_mtime);
  g_test_add_func ("/thumbnailer/sizes", test_sizes);
  g_test_add_func ("/thumbnailer/hostile/files", test_hostile);
  g_test_add_func ("/thumbnailer/hostile/crash", test_crash);
  g_test_add_func ("/thumbnailer/hostile/hang", test_hang);
  g_test_add_func ("/thumbnailer/hostile/unreadable", test_unreadable);
  g_test_add_func ("/thumbnailer/sandboxed", test_sandboxed);
  g_test_add_func ("/thumbnailer/no-workers", test_no_workers);
  g_test_add_func ("/thumbnailer/template-killed", test_template_killed);

  return g_test_run ();
}
