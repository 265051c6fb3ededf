/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs a libFuzzer target over files, without libFuzzer: the corpus
 * replay that every build (gcc, sanitizers or not) runs.
 *
 *   fuzz-*-replay FILE-OR-DIRECTORY... */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv) __attribute__((weak));

static guint n_inputs;

static void
replay_file (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len;

  if (!g_file_get_contents (path, &contents, &len, &error))
    g_error ("%s", error->message);
  LLVMFuzzerTestOneInput ((const uint8_t *) contents, len);
  n_inputs++;
}

static int
compare_paths (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

static void
replay (const char *path)
{
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = NULL;
  const char *name;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      replay_file (path);
      return;
    }

  dir = g_dir_open (path, 0, NULL);
  g_assert_nonnull (dir);
  names = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_build_filename (path, name, NULL));
  g_ptr_array_sort (names, compare_paths);
  for (guint i = 0; i < names->len; i++)
    replay (names->pdata[i]);
}

int
main (int    argc,
      char **argv)
{
  if (LLVMFuzzerInitialize != NULL)
    LLVMFuzzerInitialize (&argc, &argv);

  for (int i = 1; i < argc; i++)
    replay (argv[i]);

  if (n_inputs == 0)
    g_error ("no input to replay");
  printf ("replayed %u inputs without a failure\n", n_inputs);

  return 0;
}
