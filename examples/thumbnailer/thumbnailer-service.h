/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.freedesktop.thumbnails.Thumbnailer1 on the session bus. */
#pragma once

#include "thumbnailer-factory.h"

G_BEGIN_DECLS

int thumb_service_run (ThumbFactory *factory,
                       guint         idle_timeout_seconds);

G_END_DECLS
