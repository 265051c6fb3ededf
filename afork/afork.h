/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define AFORK_INSIDE
# include "afork-version.h"
# include "afork-version-macros.h"
# include "afork-error.h"
# include "afork-enum-types.h"
# include "afork-child.h"
# include "afork-exec-options.h"
# include "afork-process.h"
# include "afork-pool.h"
# include "afork-sandbox.h"
# include "afork-template.h"
#undef AFORK_INSIDE
