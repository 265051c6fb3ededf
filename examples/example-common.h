/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What lets the examples run straight from the build tree.
 *
 * A program that uses an installed afork needs none of this: the library
 * finds its installed afork-server by itself, and the program installs its
 * module where it likes (say $libdir/myprogram/) and passes that absolute
 * path to afork_process_require(), or passes a bare name and lists the
 * directory in AFORK_MODULE_PATH.
 *
 * The examples are not installed, so meson writes the paths of the server
 * and the modules it built into example-config.h. The environment wins
 * when set: the test suite sets AFORK_SERVER and AFORK_MODULE_PATH. */
#pragma once

#include <afork/afork.h>

#include "example-config.h"

/* Uses the afork-server of the build tree unless AFORK_SERVER says
 * otherwise. Must come before the first process is created. */
static inline void
example_use_build_tree (void)
{
  if (g_getenv ("AFORK_SERVER") == NULL)
    afork_set_server_path (EXAMPLE_SERVER_PATH);
}

/* What to give to afork_process_require(): the module's bare @name when
 * AFORK_MODULE_PATH is set (the server then searches those directories),
 * else the absolute path it was built at. */
static inline const char *
example_module (const char *name,
                const char *built_path)
{
  return g_getenv ("AFORK_MODULE_PATH") != NULL ? name : built_path;
}
