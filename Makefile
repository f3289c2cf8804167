# dpsec — top-level build. `make` builds every program; `make test` runs every suite.
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build

CC      ?= gcc
WARN    := -Wall -Wextra -Werror -Wno-missing-field-initializers
CSTD    := -std=gnu11
OPT     ?= -O2 -g
DPDK_CFLAGS := $(shell pkg-config --cflags libdpdk 2>/dev/null) -DALLOW_EXPERIMENTAL_API
DPDK_LIBS   := $(shell pkg-config --libs libdpdk 2>/dev/null) -lrte_bus_vdev
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

GEN     := $(BUILD)/gen
CFLAGS_COMMON = $(CSTD) $(WARN) $(OPT) -I$(GEN) -Iproto -MMD -MP

PROTO_SRC := $(wildcard proto/*.c)
DP_SRC    := $(wildcard dataplane/*.c)
CTL_SRC   := controlplane/dpsecctl.c controlplane/dpsecctl_show.c
UNIT_SRC  := $(wildcard tests/unit/test_*.c)

# the variants below define real targets: keep `make` meaning `make all`
.DEFAULT_GOAL := all

# normal and sanitizer variants share the rules below
define variant # $(1)=dir $(2)=extra cflags
$(1)/proto/%.o: proto/%.c $(GEN)/dpsec.pb-c.h
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_COMMON) $(2) -fPIC -c $$< -o $$@
$(1)/gen/%.o: $(GEN)/%.c $(GEN)/dpsec.pb-c.h
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_COMMON) -Wno-unused-parameter $(2) -fPIC -c $$< -o $$@
$(1)/dataplane/%.o: dataplane/%.c $(GEN)/dpsec.pb-c.h
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_COMMON) $(DPDK_CFLAGS) -Idataplane $(2) -c $$< -o $$@
$(1)/controlplane/%.o: controlplane/%.c $(GEN)/dpsec.pb-c.h
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_COMMON) $(2) -c $$< -o $$@
$(1)/libdpsecproto.a: $(patsubst proto/%.c,$(1)/proto/%.o,$(PROTO_SRC)) $(1)/gen/dpsec.pb-c.o
	$$(AR) rcs $$@ $$^
$(1)/dpsec-dataplane: $(patsubst dataplane/%.c,$(1)/dataplane/%.o,$(DP_SRC)) $(1)/libdpsecproto.a
	$$(CC) $(2) -o $$@ $$^ $(DPDK_LIBS) -lIPSec_MB -lmnl -lzmq -lprotobuf-c -lpthread -lm
$(1)/dpsecctl: $(patsubst controlplane/%.c,$(1)/controlplane/%.o,$(CTL_SRC)) $(1)/libdpsecproto.a
	$$(CC) $(2) -o $$@ $$^ -lzmq -lprotobuf-c
endef

$(eval $(call variant,$(BUILD),))
$(eval $(call variant,$(BUILD)/san,$(SAN)))

PROGS     := $(BUILD)/dpsec-dataplane $(BUILD)/dpsecctl $(BUILD)/dpsec-ike
SAN_PROGS := $(BUILD)/san/dpsec-dataplane $(BUILD)/san/dpsecctl
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all san deps test bench ab demo install clean format
all: $(PROGS)
san: $(SAN_PROGS) $(UNIT_BINS)

$(GEN)/dpsec.pb-c.c $(GEN)/dpsec.pb-c.h: proto/dpsec.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/san/libdpsecproto.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(SAN) -o $@ $< $(BUILD)/san/libdpsecproto.a -lcmocka -lzmq -lprotobuf-c

$(BUILD)/tests/test_netlink: tests/unit/test_netlink.c dataplane/netlink.c $(GEN)/dpsec.pb-c.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(SAN) -Idataplane $(DPDK_CFLAGS) -o $@ tests/unit/test_netlink.c dataplane/netlink.c -lcmocka -lmnl

deps:
	deploy/deps.sh

test:
	tests/run.sh

bench:
	tests/bench/run.sh

# Is this tree's dataplane faster than BASE (a git revision or a binary)? Interleaved pairs,
# median ratio: `make ab BASE=75e418a [CASES="decrypt:aes-gcm-128:64:10000"] [PAIRS=8]`.
CASES ?= encrypt:aes-gcm-128:64:1 decrypt:aes-gcm-128:64:1
PAIRS ?= 6
ab: $(BUILD)/dpsec-dataplane
	@[ -n "$(BASE)" ] || { echo "make ab: set BASE=<git revision or dataplane binary>" >&2; exit 2; }
	@[ "$$(id -u)" -eq 0 ] || { echo "make ab: must run as root" >&2; exit 2; }
	deploy/hugepages.sh
	/usr/bin/python3 tests/bench/ab.py --base "$(BASE)" --pairs $(PAIRS) $(CASES)

demo:
	deploy/demo.sh

# Daemons go to sbin (run by root/systemd only), tools to bin. Files under /etc that already
# exist are kept (an operator's edits survive a reinstall); the unit files are always replaced.
SBINDIR    := $(PREFIX)/sbin
BINDIR     := $(PREFIX)/bin
LIBEXECDIR := $(PREFIX)/lib/dpsec
UNITDIR    := /lib/systemd/system
install_etc = if [ -e $(DESTDIR)$(2) ]; then echo "install: keeping existing $(DESTDIR)$(2)"; \
	else install -D -m $(3) $(1) $(DESTDIR)$(2); fi
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/dpsec-dataplane $(BUILD)/dpsec-ike $(DESTDIR)$(SBINDIR)/
	install -m 0755 $(BUILD)/dpsecctl deploy/mesh/dpsec-mesh $(DESTDIR)$(BINDIR)/
	install -m 0755 deploy/hugepages.sh $(DESTDIR)$(LIBEXECDIR)/
	for u in dpsec-dataplane dpsec-ike; do \
		sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' \
			deploy/systemd/$$u.service >$(DESTDIR)$(UNITDIR)/$$u.service.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.service.tmp && \
		mv $(DESTDIR)$(UNITDIR)/$$u.service.tmp $(DESTDIR)$(UNITDIR)/$$u.service || exit 1; \
	done
	install -d -m 0755 $(DESTDIR)/etc/dpsec/swanctl/conf.d $(DESTDIR)/etc/dpsec/swanctl/x509 \
		$(DESTDIR)/etc/dpsec/swanctl/x509ca
	install -d -m 0700 $(DESTDIR)/etc/dpsec/swanctl/private
	$(call install_etc,deploy/etc/default/dpsec-dataplane,/etc/default/dpsec-dataplane,0644)
	$(call install_etc,deploy/etc/dpsec/dataplane.conf,/etc/dpsec/dataplane.conf,0644)
	$(call install_etc,deploy/etc/dpsec/strongswan.conf,/etc/dpsec/strongswan.conf,0644)
	$(call install_etc,deploy/etc/dpsec/swanctl/swanctl.conf,/etc/dpsec/swanctl/swanctl.conf,0644)

format:
	clang-format -i $(wildcard */*.[ch] tests/unit/*.c)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -type f -name '*.d' 2>/dev/null)

# SPD unit test: needs the SPD itself and DPDK (EAL, rte_acl, rte_rcu, rte_hash).
$(BUILD)/tests/test_spd: tests/unit/test_spd.c dataplane/spd.c $(BUILD)/san/libdpsecproto.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(SAN) $(DPDK_CFLAGS) -Idataplane -o $@ tests/unit/test_spd.c \
		dataplane/spd.c $(BUILD)/san/libdpsecproto.a $(DPDK_LIBS) -lcmocka -lprotobuf-c

# The index grouping a burst's packets by SA (header only: esp.h, sad.h).
$(BUILD)/tests/test_esp_group: tests/unit/test_esp_group.c dataplane/esp.h dataplane/sad.h \
		$(GEN)/dpsec.pb-c.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(SAN) $(DPDK_CFLAGS) -Idataplane -o $@ tests/unit/test_esp_group.c \
		-lcmocka

# AES-GCM of short payloads against known answers and ipsec-mb.
$(BUILD)/tests/test_aesgcm: tests/unit/test_aesgcm.c dataplane/aesgcm.c dataplane/aesgcm.h \
		dataplane/aesgcm512.c dataplane/aesgcm512.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(SAN) -march=corei7 -Idataplane -o $@ tests/unit/test_aesgcm.c \
		dataplane/aesgcm.c dataplane/aesgcm512.c -lcmocka -lIPSec_MB

# ESP building blocks test (tests/esp): crypto.c, sad.c, esp.c standalone, no sanitizers
# (ASan's shadow memory and DPDK's hugepage/IOVA mappings do not mix reliably).
ESP_TEST_SRC := tests/esp/esp_test.c dataplane/aesgcm.c dataplane/aesgcm512.c dataplane/crypto.c dataplane/sad.c dataplane/esp.c dataplane/gcm.c \
	dataplane/ipsecmb.c $(GEN)/dpsec.pb-c.c
$(BUILD)/tests/esp_test: $(ESP_TEST_SRC) $(wildcard dataplane/crypto.h dataplane/sad.h dataplane/esp.h dataplane/gcm.h \
	dataplane/ipsecmb.h)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -Wno-unused-parameter $(OPT) -I$(GEN) -Iproto -Idataplane $(DPDK_CFLAGS) -o $@ $(ESP_TEST_SRC) $(DPDK_LIBS) -lIPSec_MB -lpcap -lprotobuf-c

# Memory latency probe for `make bench` (its account of the 10k-SA cases).
$(BUILD)/bench/memlat: tests/bench/memlat.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(OPT) -o $@ $<

# ---- dpsec-ike: charon on Debian's libcharon ------------------------------------------------
# Debian ships no libcharon-dev: headers come from the strongSwan source `make deps` fetches,
# with controlplane/ike_config.h force-included as their config.h. The -Wno flags cover
# strongSwan's own headers and its METHOD() style (unused `this`), in these objects only.
SWAN_SRC   := build/strongswan/strongswan-5.9.8/src
IKE_SRC    := controlplane/dpsec_ike.c controlplane/dpsec_plugin.c controlplane/dpsec_ipsec.c \
	      controlplane/dpsec_shadow.c
IKE_OBJ    := $(patsubst controlplane/%.c,$(BUILD)/ike/%.o,$(IKE_SRC))
IKE_CFLAGS := -include controlplane/ike_config.h -I$(SWAN_SRC)/libstrongswan \
	      -I$(SWAN_SRC)/libcharon -Wno-unused-parameter -Wno-sign-compare \
	      -Wno-missing-field-initializers
IKE_LIBS   := -L/usr/lib/ipsec -lcharon -lstrongswan -Wl,-rpath,/usr/lib/ipsec -lzmq \
	      -lprotobuf-c -lpthread

$(SWAN_SRC)/libcharon/daemon.h:
	@echo "error: strongSwan 5.9.8 source not found in $(SWAN_SRC) (needed for dpsec-ike's" \
		"headers); run 'make deps'" >&2
	@exit 1

$(BUILD)/ike/%.o: controlplane/%.c controlplane/ike_config.h $(GEN)/dpsec.pb-c.h \
		  | $(SWAN_SRC)/libcharon/daemon.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(IKE_CFLAGS) -c $< -o $@

$(BUILD)/dpsec-ike: $(IKE_OBJ) $(BUILD)/libdpsecproto.a
	$(CC) -o $@ $(IKE_OBJ) $(BUILD)/libdpsecproto.a $(IKE_LIBS)
