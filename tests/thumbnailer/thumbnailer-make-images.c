/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Writes photo-like images for the thumbnailer's tests and benchmark:
 *
 *   thumbnailer-make-images DIR COUNT [WIDTH HEIGHT [FORMAT]]
 *
 * Each image is a smooth landscape of gradients with fine noise, so that
 * JPEG files have the size and decoding cost of real photographs (about
 * 0.5 MB at 1920×1080), all different. FORMAT is jpeg (the default), png,
 * bmp, tiff, ... whatever gdk-pixbuf can save. */
#include <gdk-pixbuf/gdk-pixbuf.h>

#include <stdlib.h>

static GdkPixbuf *
make_photo (int     width,
            int     height,
            guint32 seed)
{
  GdkPixbuf *pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, width, height);
  int stride = gdk_pixbuf_get_rowstride (pixbuf);
  guchar *pixels = gdk_pixbuf_get_pixels (pixbuf);
  GRand *rand = g_rand_new_with_seed (seed);
  double sun_x = g_rand_double_range (rand, 0.1, 0.9) * width;
  double sun_y = g_rand_double_range (rand, 0.1, 0.4) * height;
  double horizon = g_rand_double_range (rand, 0.45, 0.7) * height;
  int hue = g_rand_int_range (rand, 0, 64);

  for (int y = 0; y < height; y++)
    {
      guchar *row = pixels + (gsize) y * stride;

      for (int x = 0; x < width; x++)
        {
          double dx = x - sun_x, dy = y - sun_y;
          double glow = 120.0 / (1.0 + (dx * dx + dy * dy) / (width * 8.0));
          int noise = g_rand_int_range (rand, -12, 13);
          int r, g, b;

          if (y < horizon)
            {
              r = 60 + hue + (int) (y * 80 / horizon + glow);
              g = 110 + (int) (y * 60 / horizon + glow * 0.8);
              b = 200 - (int) (y * 40 / horizon) + (int) (glow * 0.3);
            }
          else
            {
              double ripple = 18.0 * ((x * 7 + y * 13) % 97) / 97.0;

              r = 40 + hue / 2 + (int) ripple;
              g = 90 + (int) ((y - horizon) * 60 / (height - horizon)) + (int) ripple;
              b = 50 + (int) ripple;
            }
          row[x * 3 + 0] = CLAMP (r + noise, 0, 255);
          row[x * 3 + 1] = CLAMP (g + noise, 0, 255);
          row[x * 3 + 2] = CLAMP (b + noise, 0, 255);
        }
    }

  g_rand_free (rand);
  return pixbuf;
}

int
main (int   argc,
      char *argv[])
{
  const char *format = argc > 5 ? argv[5] : "jpeg";
  int count, width = 1920, height = 1080;

  if (argc != 3 && argc != 5 && argc != 6)
    {
      g_printerr ("usage: %s DIR COUNT [WIDTH HEIGHT [FORMAT]]\n", argv[0]);
      return 2;
    }
  count = atoi (argv[2]);
  if (argc >= 5)
    {
      width = atoi (argv[3]);
      height = atoi (argv[4]);
    }
  if (count < 0 || width <= 0 || height <= 0 || g_mkdir_with_parents (argv[1], 0755) < 0)
    {
      g_printerr ("%s: bad arguments\n", argv[0]);
      return 2;
    }

  for (int i = 0; i < count; i++)
    {
      g_autoptr(GdkPixbuf) photo = make_photo (width, height, (guint32) i + 1);
      g_autoptr(GError) error = NULL;
      g_autofree char *name = g_strdup_printf ("photo-%04d.%s", i,
                                               g_str_equal (format, "jpeg") ? "jpg" : format);
      g_autofree char *path = g_build_filename (argv[1], name, NULL);
      gboolean saved;

      if (g_str_equal (format, "jpeg"))
        saved = gdk_pixbuf_save (photo, path, format, &error, "quality", "90", NULL);
      else
        saved = gdk_pixbuf_save (photo, path, format, &error, NULL);
      if (!saved)
        {
          g_printerr ("%s: %s\n", path, error->message);
          return 1;
        }
    }

  return 0;
}
