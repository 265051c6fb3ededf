/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A server without the Python loader (a build without python3-dev, or
 * one whose loader was removed): python: names fail with a clear error
 * naming the loader, and the server does not crash. */
#include <afork/afork.h>

#include "afork-test-common.h"

#include <glib/gstdio.h>
#include <string.h>

static void
check_absent (const char *require,
              const char *function)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) process = afork_process_new_exec (&error);
  g_autoptr(GSocketConnection) connection = NULL;

  g_assert_no_error (error);
  if (require != NULL)
    afork_process_require (process, require);
  connection = afork_test_run (process, function, &error);
  g_assert_null (connection);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "“python:”"));
  g_assert_nonnull (strstr (error->message, "python.so"));
}

static void
test_absent_require (void)
{
  check_absent ("python:os", "python:os.getpid");
}

static void
test_absent_run (void)
{
  check_absent (NULL, "python:os.getpid");
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *empty = NULL;

  afork_test_init (&argc, &argv);

  /* Servers spawned by this program search only an empty directory. */
  empty = g_dir_make_tmp ("afork-no-loaders-XXXXXX", NULL);
  g_assert_nonnull (empty);
  g_setenv ("AFORK_LOADER_PATH", empty, TRUE);

  g_test_add_func ("/afork/python/loader/absent/require", test_absent_require);
  g_test_add_func ("/afork/python/loader/absent/run", test_absent_run);

  {
    int status = g_test_run ();
    g_rmdir (empty);
    return status;
  }
}
