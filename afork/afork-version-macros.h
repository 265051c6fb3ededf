/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(AFORK_INSIDE) && !defined(AFORK_COMPILATION)
# error "Only <afork/afork.h> can be included directly."
#endif

#include <glib.h>

#include "afork-version.h"

#ifndef _AFORK_EXTERN
# define _AFORK_EXTERN __attribute__((visibility("default"))) extern
#endif

/**
 * AFORK_VERSION_1_0:
 *
 * A macro that evaluates to the 1.0 version of afork, in a format
 * that can be used by the C pre-processor.
 *
 * Since: 1.0
 */
#define AFORK_VERSION_1_0 (G_ENCODE_VERSION (1, 0))

#define AFORK_VERSION_CUR_STABLE (G_ENCODE_VERSION (AFORK_MAJOR_VERSION, AFORK_MINOR_VERSION))

#ifndef AFORK_VERSION_MIN_REQUIRED
# define AFORK_VERSION_MIN_REQUIRED (AFORK_VERSION_CUR_STABLE)
#endif

#ifndef AFORK_VERSION_MAX_ALLOWED
# define AFORK_VERSION_MAX_ALLOWED (AFORK_VERSION_CUR_STABLE)
#endif

#define AFORK_AVAILABLE_IN_ALL _AFORK_EXTERN

#if AFORK_VERSION_MAX_ALLOWED < AFORK_VERSION_1_0
# define AFORK_AVAILABLE_IN_1_0 G_UNAVAILABLE (1, 0) _AFORK_EXTERN
#else
# define AFORK_AVAILABLE_IN_1_0 _AFORK_EXTERN
#endif
