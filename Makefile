# caredesk build. `make` builds ./caredesk, `make test` runs every test,
# `make run` serves the shipped example KB and intents on port 8080.
#
# Switches: SANITIZE=address,undefined  WERROR=1  O=0 (no optimisation)
# DATA=../shared/data (evaluation sets, read in place, never copied)
# `make fuzz` builds the libFuzzer targets tests/fuzz/fuzz_*.c (clang);
# `make fuzz-smoke` runs each for FUZZ_SECONDS (default 20) on its seed corpus.

CC       ?= cc
PKGS     := libwebsockets jansson sqlite3
DATA     ?= ../shared/data
O        ?= 2

BUILD    := build
ifneq ($(SANITIZE),)
BUILD    := build/san
endif

CFLAGS   ?= -g
CFLAGS   += -O$(O) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wstrict-prototypes -Wshadow \
            -Wno-unused-parameter -Iinclude -MMD -MP
LDLIBS   += -lstemmer -lm -lpthread
ifneq ($(WERROR),)
CFLAGS   += -Werror
endif
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

# Dependencies are checked (and installed as root) before anything compiles.
DEPS_STAMP := build/.deps-ok
ifeq ($(filter deps clean check-style format help,$(MAKECMDGOALS)),)
ifeq ($(wildcard $(DEPS_STAMP)),)
$(shell scripts/deps.sh >&2 && mkdir -p build && touch $(DEPS_STAMP))
ifeq ($(wildcard $(DEPS_STAMP)),)
$(error missing build dependencies: see the message above)
endif
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
endif
CFLAGS += $(PKG_CFLAGS)
LDLIBS := $(PKG_LIBS) $(LDLIBS)

SRC      := $(sort $(wildcard src/*.c))
LIB_SRC  := $(filter-out src/main.c,$(SRC))
LIB_OBJ  := $(LIB_SRC:src/%.c=$(BUILD)/src/%.o)
LIB      := $(BUILD)/libcaredesk.a
BIN      := $(BUILD)/caredesk
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(sort $(wildcard bench/*.c))
TOOL_BIN := $(TOOL_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all test unit integration run bench soak check-style format lint clean deps help \
        fuzz fuzz-smoke

all: caredesk

caredesk: $(BIN)
	@if [ -z "$(SANITIZE)" ]; then cp $(BIN) caredesk; fi

$(BIN): $(BUILD)/src/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# tests/unit/testlib.c (shared helpers: test databases, a fake chat transport) links into
# every unit test.
TESTLIB  := $(BUILD)/tests/testlib.o

$(TESTLIB): tests/unit/testlib.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(TESTLIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(TESTLIB) $(LIB) $(LDFLAGS) -lcmocka $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

# bench/lang_eval also measures libexttextcat when it is installed (it is not a
# dependency of caredesk itself: the built-in detector, langid.c, won on the measurement).
TEXTCAT_OK := $(shell pkg-config --exists libexttextcat 2>/dev/null && echo 1)
$(BUILD)/bench/lang_eval: bench/lang_eval.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(TEXTCAT_OK),-DHAVE_TEXTCAT $(shell pkg-config --cflags libexttextcat)) \
	  -o $@ $< $(LIB) $(LDFLAGS) $(if $(TEXTCAT_OK),$(shell pkg-config --libs libexttextcat)) $(LDLIBS)

# Every test: unit tests (cmocka), data-driven cases, integration tests
# against the real server. The last line is the summary "N passed, N failed".
test: $(BIN) $(UNIT_BIN) $(TOOL_BIN)
	@BUILD=$(BUILD) DATA=$(DATA) CAREDESK_BIN=$(abspath $(BIN)) tests/run.sh

unit: $(UNIT_BIN)
	@BUILD=$(BUILD) DATA=$(DATA) CAREDESK_BIN=$(abspath $(BIN)) tests/run.sh unit

run: caredesk
	./caredesk serve

bench: $(BIN) $(TOOL_BIN)
	@BUILD=$(BUILD) DATA=$(DATA) CAREDESK_BIN=$(abspath $(BIN)) bench/run.sh

# A bounded soak run (SOAK_MINUTES, default 10) at half the measured peak; not in CI.
soak: $(BIN) $(TOOL_BIN)
	@BUILD=$(BUILD) CAREDESK_BIN=$(abspath $(BIN)) bench/soak.sh

# libFuzzer targets: every tests/fuzz/fuzz_NAME.c, linked with the library built with
# coverage instrumentation and ASan+UBSan; its seed corpus is tests/fuzz/corpus/NAME/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 20
FUZZ_BUILD   := build/fuzz
FUZZ_SAN     := address,undefined
FUZZ_CFLAGS  := -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Iinclude \
                -MMD -MP -fno-omit-frame-pointer -fno-sanitize-recover=all $(PKG_CFLAGS)
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_LIB_OBJ := $(LIB_SRC:src/%.c=$(FUZZ_BUILD)/src/%.o)
FUZZ_LIB     := $(FUZZ_BUILD)/libcaredesk.a

fuzz: $(FUZZ_BIN)

fuzz-smoke: fuzz
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz-smoke.sh $(FUZZ_BIN)

$(FUZZ_BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(FUZZ_SAN) -o $@ $< $(FUZZ_LIB) $(LDLIBS)

FORMAT_FILES = $(wildcard src/*.c include/*.h tests/unit/*.c tests/fuzz/*.c bench/*.c)

check-style:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "check-style: ok"

format:
	clang-format -i $(FORMAT_FILES)

lint:
	@cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	  --std=c11 --inline-suppr -Iinclude --suppress=missingIncludeSystem \
	  src/ && echo "lint: ok"

deps:
	@scripts/deps.sh && mkdir -p build && touch $(DEPS_STAMP)

clean:
	rm -rf build caredesk

help:
	@sed -n '1,/^$$/p' Makefile

-include $(LIB_OBJ:.o=.d) $(BUILD)/src/main.d $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_BIN:=.d)
