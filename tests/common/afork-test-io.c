/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Calls nothing outside the C library: a module that links it loads no
 * more libraries than it did. */
#include "afork-test-io.h"

#include <errno.h>
#include <unistd.h>

/* Writes all of @data to @fd, again after short writes and EINTR.
 * Returns FALSE if a write failed. */
gboolean
afork_test_write_all (int         fd,
                      const void *data,
                      gsize       len)
{
  const char *p = data;

  while (len > 0)
    {
      ssize_t res = write (fd, p, len);

      if (res < 0 && errno == EINTR)
        continue;
      if (res <= 0)
        return FALSE;
      p += res;
      len -= (gsize) res;
    }

  return TRUE;
}
