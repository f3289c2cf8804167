/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Features of the built-in "dpsec" plugin (see dpsec_plugin.h).
 */
#include <daemon.h>
#include <kernel/kernel_ipsec.h>
#include <plugins/plugin_feature.h>

#include "dpsec_ipsec.h"
#include "dpsec_plugin.h"

#define PLUGIN_NAME "dpsec"

static bool is_backend;

/*
 * kernel_interface_t keeps the first IPsec backend registered and refuses
 * later ones: if this fails, another plugin would program the kernel's XFRM.
 */
static bool register_ipsec(plugin_t *plugin, plugin_feature_t *feature, bool reg, void *data)
{
	bool ok = kernel_ipsec_register(plugin, feature, reg, data);

	if (reg) {
		is_backend = ok;
		if (!ok)
			DBG1(DBG_KNL, "dpsec: another kernel-ipsec backend was registered first");
	} else {
		is_backend = FALSE;
	}
	return ok;
}

void dpsec_plugin_register(void)
{
	static plugin_feature_t features[] = {
	    PLUGIN_CALLBACK(register_ipsec, dpsec_ipsec_create),
	    PLUGIN_PROVIDE(CUSTOM, "kernel-ipsec"),
	};

	/* critical: charon must not start without its IPsec backend */
	lib->plugins->add_static_features(lib->plugins, PLUGIN_NAME, features, countof(features),
					  TRUE, NULL, NULL);
}

bool dpsec_plugin_is_backend(void)
{
	return is_backend;
}
