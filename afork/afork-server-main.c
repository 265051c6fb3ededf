/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "afork-server-private.h"

int
main (int    argc,
      char **argv)
{
  return _afork_server_main (argc, argv);
}
