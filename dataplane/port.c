/* SPDX-License-Identifier: BSD-3-Clause */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_bus_vdev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "port.h"

#define PORT_RX_DESC	1024
#define PORT_TX_DESC	1024
#define PORT_POOL_CACHE 256

struct port ports[PORT_MAX];
uint16_t port_min_mtu = RTE_ETHER_MTU;
uint16_t port_wire_count;
struct rte_mempool *port_pool;

static unsigned port_n_workers;

int port_init(unsigned n_workers, unsigned pool_size, char *err, size_t errlen)
{
	port_n_workers = n_workers;
	port_wire_count = rte_eth_dev_count_avail();
	for (uint16_t i = 0; i < PORT_MAX; i++)
		ports[i] = (struct port){.id = i, .tap = PORT_NONE, .tap_ifindex = -1};
	port_pool = rte_pktmbuf_pool_create("dpsec_mbuf", pool_size, PORT_POOL_CACHE, 0,
					    RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
	if (port_pool == NULL) {
		snprintf(err, errlen, "cannot create mbuf pool of %u: %s", pool_size,
			 rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

/* One queue setup for both wire ports and TAPs. */
static int queues_setup(uint16_t id, uint16_t nb_rxq, uint16_t nb_txq, char *err, size_t errlen)
{
	struct rte_eth_conf conf = {0};
	struct rte_eth_dev_info info;
	uint16_t nb_rxd = PORT_RX_DESC, nb_txd = PORT_TX_DESC;
	int socket = rte_eth_dev_socket_id(id);
	int rc;

	rc = rte_eth_dev_info_get(id, &info);
	if (rc != 0)
		goto fail;
	if (nb_rxq > info.max_rx_queues)
		nb_rxq = info.max_rx_queues;
	if (nb_txq > info.max_tx_queues) {
		snprintf(err, errlen,
			 "ethdev %u (%s) has %u TX queues, need %u (one per worker): use fewer "
			 "worker lcores",
			 id, info.driver_name, info.max_tx_queues, nb_txq);
		return -1;
	}
	if (nb_rxq > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
		    info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP);
		if (conf.rx_adv_conf.rss_conf.rss_hf == 0)
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
	}
	rc = rte_eth_dev_configure(id, nb_rxq, nb_txq, &conf);
	if (rc != 0)
		goto fail;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(id, &nb_rxd, &nb_txd);
	if (rc != 0)
		goto fail;
	for (uint16_t q = 0; q < nb_rxq; q++) {
		rc =
		    rte_eth_rx_queue_setup(id, q, nb_rxd, socket < 0 ? 0 : socket, NULL, port_pool);
		if (rc != 0)
			goto fail;
	}
	for (uint16_t q = 0; q < nb_txq; q++) {
		rc = rte_eth_tx_queue_setup(id, q, nb_txd, socket < 0 ? 0 : socket, NULL);
		if (rc != 0)
			goto fail;
	}
	return nb_rxq;
fail:
	snprintf(err, errlen, "ethdev %u setup failed: %s", id, rte_strerror(-rc));
	return -1;
}

static bool name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > PORT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)name[i]) || name[i] == '-' || name[i] == '_'))
			return false;
	return true;
}

/*
 * The kernel must answer TTL-expired packets we punt (ICMP time exceeded, with
 * its own rate limit), which it only does on an interface that forwards; for
 * IPv6 also with net.ipv6.conf.all.forwarding, which is the operator's to set.
 * A forwarding IPv6 interface is a router's: it takes no router advertisements.
 */
static void tap_sysctls(const char *ifname)
{
	static const char *const fmt[] = {"/proc/sys/net/ipv4/conf/%s/forwarding",
					  "/proc/sys/net/ipv6/conf/%s/forwarding"};
	char path[128];
	int fd;

	for (size_t i = 0; i < RTE_DIM(fmt); i++) {
		snprintf(path, sizeof(path), fmt[i], ifname);
		fd = open(path, O_WRONLY);
		if (fd < 0)
			continue; /* no IPv6 on this host */
		if (write(fd, "1", 1) != 1)
			RTE_LOG(WARNING, USER1, "cannot enable forwarding on %s\n", ifname);
		close(fd);
	}
}

int port_configure(uint16_t id, const char *name, char *err, size_t errlen)
{
	struct port *p;
	char vdev[64], args[128];
	int rc;

	if (id >= port_wire_count || id >= PORT_MAX) {
		snprintf(err, errlen, "port %u does not exist (%u DPDK ports probed)", id,
			 port_wire_count);
		return -ENOENT;
	}
	if (!name_ok(name)) {
		snprintf(err, errlen, "bad port name \"%s\"", name);
		return -EINVAL;
	}
	p = &ports[id];
	if (p->configured) {
		snprintf(err, errlen, "port %u is already configured as \"%s\"", id, p->name);
		return -EEXIST;
	}
	if (port_by_name(name) >= 0) {
		snprintf(err, errlen, "port name \"%s\" is already used", name);
		return -EEXIST;
	}
	rc = queues_setup(id, port_n_workers, port_n_workers, err, errlen);
	if (rc < 0)
		return -EINVAL;
	p->nb_rxq = rc;
	rte_eth_macaddr_get(id, &p->mac);
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->tap_name, sizeof(p->tap_name), "dp-%s", name);

	snprintf(vdev, sizeof(vdev), "net_tap_%s", name);
	snprintf(args, sizeof(args), "iface=%s,mac=" RTE_ETHER_ADDR_PRT_FMT, p->tap_name,
		 RTE_ETHER_ADDR_BYTES(&p->mac));
	rc = rte_vdev_init(vdev, args);
	if (rc != 0) {
		snprintf(err, errlen, "cannot create TAP %s: %s", p->tap_name, rte_strerror(-rc));
		return -EINVAL;
	}
	rc = rte_eth_dev_get_port_by_name(vdev, &p->tap);
	if (rc != 0 || queues_setup(p->tap, port_n_workers, port_n_workers, err, errlen) < 0 ||
	    rte_eth_dev_start(p->tap) != 0) {
		if (rc != 0)
			snprintf(err, errlen, "TAP %s vanished", p->tap_name);
		rte_vdev_uninit(vdev);
		p->tap = PORT_NONE;
		return -EINVAL;
	}
	p->tap_ifindex = if_nametoindex(p->tap_name);
	tap_sysctls(p->tap_name);
	p->configured = true;
	return 0;
}

int port_start_all(char *err, size_t errlen)
{
	for (uint16_t i = 0; i < PORT_MAX; i++) {
		struct port *p = &ports[i];
		int rc;

		if (!p->configured || p->started)
			continue;
		rc = rte_eth_dev_start(p->id);
		if (rc != 0) {
			snprintf(err, errlen, "cannot start port %u (%s): %s", p->id, p->name,
				 rte_strerror(-rc));
			return -1;
		}
		rte_eth_dev_set_link_up(p->id);
		p->started = true;
		uint16_t mtu;
		if (rte_eth_dev_get_mtu(p->id, &mtu) == 0 && mtu >= RTE_ETHER_MIN_MTU &&
		    mtu < port_min_mtu)
			port_min_mtu = mtu;
	}
	return 0;
}

void port_stop_all(void)
{
	for (uint16_t i = 0; i < PORT_MAX; i++) {
		struct port *p = &ports[i];

		if (!p->configured)
			continue;
		if (p->started)
			rte_eth_dev_stop(p->id);
		rte_eth_dev_close(p->id);
		if (p->tap != PORT_NONE) {
			char vdev[64];

			rte_eth_dev_stop(p->tap);
			rte_eth_dev_close(p->tap);
			snprintf(vdev, sizeof(vdev), "net_tap_%s", p->name);
			rte_vdev_uninit(vdev);
		}
		p->configured = p->started = false;
	}
}

int port_by_ifindex(int ifindex)
{
	for (uint16_t i = 0; i < PORT_MAX; i++)
		if (ports[i].configured && ports[i].tap_ifindex == ifindex)
			return i;
	return -1;
}

int port_by_name(const char *name)
{
	for (uint16_t i = 0; i < PORT_MAX; i++)
		if (ports[i].configured && strcmp(ports[i].name, name) == 0)
			return i;
	return -1;
}
