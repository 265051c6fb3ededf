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

/**
 * AFORK_VERSION_CUR_STABLE:
 *
 * A macro that evaluates to the current stable version of afork, in a
 * format that can be used by the C pre-processor.
 *
 * Since: 1.0
 */
#define AFORK_VERSION_CUR_STABLE (G_ENCODE_VERSION (AFORK_MAJOR_VERSION, AFORK_MINOR_VERSION))

/**
 * AFORK_VERSION_MIN_REQUIRED:
 *
 * A macro that should be defined by the user prior to including the
 * afork.h header: the oldest version of afork the program is meant to
 * build against (no API of afork is deprecated yet, so it changes no
 * warning today). It defaults to %AFORK_VERSION_CUR_STABLE; the value must be
 * one of the predefined version macros, such as %AFORK_VERSION_1_0.
 *
 * Since: 1.0
 */
#ifndef AFORK_VERSION_MIN_REQUIRED
# define AFORK_VERSION_MIN_REQUIRED (AFORK_VERSION_CUR_STABLE)
#endif

/**
 * AFORK_VERSION_MAX_ALLOWED:
 *
 * A macro that should be defined by the user prior to including the
 * afork.h header: the newest version of afork whose API the program may
 * use. Using API added after it gives a compiler warning. It defaults to
 * %AFORK_VERSION_CUR_STABLE; the value must be one of the predefined
 * version macros, such as %AFORK_VERSION_1_0.
 *
 * Since: 1.0
 */
#ifndef AFORK_VERSION_MAX_ALLOWED
# define AFORK_VERSION_MAX_ALLOWED (AFORK_VERSION_CUR_STABLE)
#endif

/**
 * AFORK_AVAILABLE_IN_ALL:
 *
 * Marks a symbol of afork available in every version: it is exported
 * from the library and never gives a version warning.
 *
 * Since: 1.0
 */
#define AFORK_AVAILABLE_IN_ALL _AFORK_EXTERN

/**
 * AFORK_AVAILABLE_IN_1_0:
 *
 * Marks a symbol of afork added in version 1.0: it is exported from the
 * library, and using it gives a warning when %AFORK_VERSION_MAX_ALLOWED
 * is older than %AFORK_VERSION_1_0.
 *
 * Since: 1.0
 */

#if AFORK_VERSION_MAX_ALLOWED < AFORK_VERSION_1_0
# define AFORK_AVAILABLE_IN_1_0 G_UNAVAILABLE (1, 0) _AFORK_EXTERN
#else
# define AFORK_AVAILABLE_IN_1_0 _AFORK_EXTERN
#endif
