/*
 * Finding and opening cuBLAS and cuDNN at run time (see vendor_libraries.h for the order).
 */
#define _GNU_SOURCE
#include "vendor_libraries.h"

#include <dirent.h>
#include <dlfcn.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* How to find one library. */
typedef struct {
    const char *name;               /* "cuBLAS" */
    const char *file;               /* "libcublas.so" */
    const char *majors[4];          /* version suffixes to try, newest first */
    const char *variable;           /* "AMBIENT_CUBLAS" */
    const char *site_folders[5];    /* under site-packages */
    const char *companion_prefix;   /* "libcublasLt.so" or "libcudnn_" */
} vendor_spec;

static const vendor_spec CUBLAS_SPEC = {
    "cuBLAS", "libcublas.so", {"13", "12", "11", NULL}, "AMBIENT_CUBLAS",
    {"nvidia/cublas/lib", "nvidia/cu13/lib", "nvidia/cu12/lib", "torch/lib", NULL}, "libcublasLt.so"};
static const vendor_spec CUDNN_SPEC = {
    "cuDNN", "libcudnn.so", {"9", "8", NULL, NULL}, "AMBIENT_CUDNN",
    {"nvidia/cudnn/lib", "nvidia/cu13/lib", "nvidia/cu12/lib", "torch/lib", NULL}, "libcudnn_"};

static void append(char *buffer, size_t capacity, const char *format, ...) {
    size_t used = strlen(buffer);
    if (used + 1 >= capacity) return;
    va_list args;
    va_start(args, format);
    vsnprintf(buffer + used, capacity - used, format, args);
    va_end(args);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* "libcudnn.so.9" -> ".so.9"-style suffix after the spec's file stem ("" when not ours). */
static const char *version_suffix(const vendor_spec *spec, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t stem = strlen(spec->file);
    return strncmp(base, spec->file, stem) == 0 ? base + stem : NULL;
}

/*
 * Opens the companions in `folder` whose names start with the spec's prefix and end with the
 * main file's version suffix, repeating while some still fail and others succeed (so that
 * their order among themselves does not matter). Failures are listed in status->companions.
 */
static void open_companions(const vendor_spec *spec, const char *folder, const char *suffix, vendor_status *status) {
    DIR *dir = opendir(folder);
    if (!dir) return;
    char names[32][256], wanted_end[64];
    int count = 0;
    snprintf(wanted_end, sizeof wanted_end, ".so%s", suffix);
    size_t prefix = strlen(spec->companion_prefix), end = strlen(wanted_end);
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && count < 32) {
        const char *n = entry->d_name;
        size_t length = strlen(n);
        if (strncmp(n, spec->companion_prefix, prefix) != 0 || length <= end || strcmp(n + length - end, wanted_end) != 0)
            continue;
        /* the name's first dot must be that of ".so<suffix>": libcudnn_ops.so.9, libcublasLt.so.12 */
        if (strchr(n, '.') != n + length - end) continue;
        snprintf(names[count++], sizeof names[0], "%s", n);
    }
    closedir(dir);
    int opened[32] = {0}, progress = 1, left = count;
    char last_error[32][256];
    while (progress && left > 0) {
        progress = 0;
        for (int i = 0; i < count; i++) {
            if (opened[i]) continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", folder, names[i]);
            if (dlopen(path, RTLD_NOW | RTLD_LOCAL)) {
                opened[i] = 1;
                progress = 1;
                left--;
            } else {
                const char *error = dlerror();
                snprintf(last_error[i], sizeof last_error[0], "%s", error ? error : "unknown error");
            }
        }
    }
    for (int i = 0; i < count; i++)
        if (!opened[i]) append(status->companions, sizeof status->companions, "%s%s (%s)", status->companions[0] ? "; " : "",
                               names[i], last_error[i]);
}

/* Tries one candidate; returns the dlopen handle or NULL with the reason in `why`. */
static void *try_open(const vendor_spec *spec, const char *path_or_soname, const char *folder, vendor_status *status,
                      char *why, size_t why_capacity) {
    if (strchr(path_or_soname, '/')) {
        FILE *f = fopen(path_or_soname, "rb");
        unsigned char magic[4] = {0};
        size_t got = f ? fread(magic, 1, 4, f) : 0;
        if (f) fclose(f);
        if (got != 4 || magic[0] != 0x7f || magic[1] != 'E' || magic[2] != 'L' || magic[3] != 'F') {
            snprintf(why, why_capacity, "not an ELF shared library");
            return NULL;
        }
    }
    const char *suffix = version_suffix(spec, path_or_soname);
    if (folder && suffix) open_companions(spec, folder, suffix, status);
    void *handle = dlopen(path_or_soname, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *error = dlerror();
        snprintf(why, why_capacity, "%s", error ? error : "dlopen failed");
    }
    return handle;
}

/* a + "/" + b into out when it fits; 0 when it does not (the candidate is then skipped). */
static int join(char *out, size_t capacity, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la + 1 + lb + 1 > capacity) return 0;
    memcpy(out, a, la);
    out[la] = '/';
    memcpy(out + la + 1, b, lb + 1);
    return 1;
}

#define FOLDER_CAPACITY 3072

/* Appends a/b to the folders when it is a directory not listed yet. */
static void add_folder(char folders[][FOLDER_CAPACITY], int *count, int capacity, const char *a, const char *b) {
    if (*count >= capacity || !join(folders[*count], FOLDER_CAPACITY, a, b) || !is_directory(folders[*count])) return;
    for (int i = 0; i < *count; i++)
        if (strcmp(folders[i], folders[*count]) == 0) return;
    (*count)++;
}

/* Folders that exist: the CUDA toolkit's, then site-packages/<sub> for every sub of the spec. */
static int candidate_folders(const vendor_spec *spec, char folders[][FOLDER_CAPACITY], int capacity) {
    int count = 0;
    char pattern[4096];
    const char *cuda_home = getenv("CUDA_HOME"), *cuda_path = getenv("CUDA_PATH");
    if (cuda_home && *cuda_home) add_folder(folders, &count, capacity, cuda_home, "lib64");
    if (cuda_path && *cuda_path) add_folder(folders, &count, capacity, cuda_path, "lib64");
    add_folder(folders, &count, capacity, "/usr/local/cuda", "lib64");

    /* site-packages folders, in the order VendorLibraries.java uses */
    char roots[64][2048];
    int nroots = 0;
    const char *python_path = getenv("PYTHONPATH");
    if (python_path) {
        char copy[8192];
        snprintf(copy, sizeof copy, "%s", python_path);
        for (char *save = NULL, *entry = strtok_r(copy, ":", &save); entry && nroots < 64; entry = strtok_r(NULL, ":", &save))
            snprintf(roots[nroots++], sizeof roots[0], "%s", entry);
    }
    const char *prefixes[8];
    char home_lib[4096] = "", venv_lib[4096] = "", conda_lib[4096] = "";
    int nprefixes = 0;
    if (getenv("VIRTUAL_ENV") && *getenv("VIRTUAL_ENV")) {
        snprintf(venv_lib, sizeof venv_lib, "%s/lib", getenv("VIRTUAL_ENV"));
        prefixes[nprefixes++] = venv_lib;
    }
    if (getenv("CONDA_PREFIX") && *getenv("CONDA_PREFIX")) {
        snprintf(conda_lib, sizeof conda_lib, "%s/lib", getenv("CONDA_PREFIX"));
        prefixes[nprefixes++] = conda_lib;
    }
    if (getenv("HOME") && *getenv("HOME")) {
        snprintf(home_lib, sizeof home_lib, "%s/.local/lib", getenv("HOME"));
        prefixes[nprefixes++] = home_lib;
    }
    prefixes[nprefixes++] = "/usr/local/lib";
    prefixes[nprefixes++] = "/usr/lib";
    prefixes[nprefixes++] = "/opt/conda/lib";
    for (int p = 0; p < nprefixes; p++) {
        snprintf(pattern, sizeof pattern, "%s/python3*", prefixes[p]);
        glob_t found;
        if (glob(pattern, GLOB_ONLYDIR, NULL, &found) != 0) continue;
        for (size_t g = found.gl_pathc; g-- > 0 && nroots + 2 <= 64;) { /* newest name first */
            snprintf(roots[nroots++], sizeof roots[0], "%s/site-packages", found.gl_pathv[g]);
            snprintf(roots[nroots++], sizeof roots[0], "%s/dist-packages", found.gl_pathv[g]);
        }
        globfree(&found);
    }
    for (int r = 0; r < nroots; r++)
        for (int s = 0; spec->site_folders[s]; s++) add_folder(folders, &count, capacity, roots[r], spec->site_folders[s]);
    return count;
}

/* Finds and opens the library; fills status->path or status->problem. */
static void *find_library(const vendor_spec *spec, vendor_status *status) {
    memset(status, 0, sizeof *status);
    status->name = spec->name;
    char why[2048];
    const char *named = getenv(spec->variable);
    if (named && *named) {
        if (!is_file(named)) {
            snprintf(status->problem, sizeof status->problem, "%s=%s is not a file", spec->variable, named);
            return NULL;
        }
        char folder[4096];
        snprintf(folder, sizeof folder, "%s", named);
        char *slash = strrchr(folder, '/');
        if (slash) *slash = '\0';
        void *handle = try_open(spec, named, slash ? folder : ".", status, why, sizeof why);
        if (handle) snprintf(status->path, sizeof status->path, "%s", named);
        else snprintf(status->problem, sizeof status->problem, "%s=%s could not be loaded: %s", spec->variable, named, why);
        return handle;
    }
    char names[5][64];
    int nnames = 0;
    for (int m = 0; spec->majors[m]; m++) snprintf(names[nnames++], sizeof names[0], "%s.%s", spec->file, spec->majors[m]);
    snprintf(names[nnames++], sizeof names[0], "%s", spec->file);

    for (int i = 0; i < nnames; i++) {
        void *handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (handle) {
            snprintf(status->path, sizeof status->path, "%s (system library path)", names[i]);
            return handle;
        }
    }
    static char folders[128][FOLDER_CAPACITY];
    int nfolders = candidate_folders(spec, folders, 128);
    for (int f = 0; f < nfolders; f++) {
        for (int i = 0; i < nnames; i++) {
            char path[FOLDER_CAPACITY + 64];
            if (!join(path, sizeof path, folders[f], names[i]) || !is_file(path)) continue;
            void *handle = try_open(spec, path, folders[f], status, why, sizeof why);
            if (handle) {
                snprintf(status->path, sizeof status->path, "%s", path);
                status->problem[0] = '\0';
                return handle;
            }
            append(status->problem, sizeof status->problem, "%s%s: %s",
                   status->problem[0] ? "; " : "found but could not load ", path, why);
            break; /* one file per folder: the newest that is there */
        }
    }
    if (!status->problem[0]) {
        snprintf(status->problem, sizeof status->problem,
                 "looked for %s.%s and older in %s, the system library path, a CUDA toolkit's lib64 and Python's "
                 "site-packages (%s, ...)",
                 spec->file, spec->majors[0], spec->variable, spec->site_folders[0]);
    }
    return NULL;
}

/* Resolves every function of the table; returns how many are missing (listed in the status). */
#define RESOLVE(name)                                                                                   \
    *(void **)&api->name = dlsym(handle, #name);                                                        \
    if (!api->name) {                                                                                   \
        append(api->status.problem, sizeof api->status.problem, "%s%s", missing++ ? ", " : "lacks ", #name); \
    }

void vendor_load_cublas(cublas_api *api) {
    memset(api, 0, sizeof *api);
    void *handle = find_library(&CUBLAS_SPEC, &api->status);
    if (!handle) return;
    api->status.present = 1;
    int missing = 0;
    CUBLAS_FUNCTIONS(RESOLVE)
    if (api->cublasGetProperty) {
        int parts[3] = {0, 0, 0}, ok = 1;
        for (int i = 0; i < 3; i++) ok &= api->cublasGetProperty(i, &parts[i]) == CUBLAS_STATUS_SUCCESS;
        if (ok) snprintf(api->status.version, sizeof api->status.version, "%d.%d.%d", parts[0], parts[1], parts[2]);
    }
    /* cublasGetStatusString came with cuBLAS 11.4; without it statuses print as numbers. */
    int required_missing = missing - (api->cublasGetStatusString == NULL);
    api->status.usable = required_missing == 0 && api->status.version[0] != '\0';
}

void vendor_load_cudnn(cudnn_api *api) {
    memset(api, 0, sizeof *api);
    void *handle = find_library(&CUDNN_SPEC, &api->status);
    if (!handle) return;
    api->status.present = 1;
    int missing = 0;
    CUDNN_FUNCTIONS(RESOLVE)
    if (api->cudnnGetVersion) {
        size_t v = api->cudnnGetVersion();
        size_t major = v >= 90000 ? v / 10000 : v / 1000, rest = v >= 90000 ? v % 10000 : v % 1000;
        snprintf(api->status.version, sizeof api->status.version, "%zu.%zu.%zu", major, rest / 100, rest % 100);
        if (api->cudnnGetCudartVersion) {
            size_t cuda = api->cudnnGetCudartVersion();
            append(api->status.version, sizeof api->status.version, " (for CUDA %zu.%zu)", cuda / 1000, cuda % 1000 / 10);
        }
    }
    api->status.usable = missing == 0 && api->status.version[0] != '\0';
}
#undef RESOLVE

void vendor_describe(const vendor_status *status, char *line, size_t capacity) {
    if (!status->present) {
        snprintf(line, capacity, "%s: not found (%s)", status->name, status->problem);
        return;
    }
    snprintf(line, capacity, "%s %s at %s%s%s", status->name, status->version[0] ? status->version : "of unknown version",
             status->path, status->problem[0] ? "; " : "", status->problem);
    if (status->companions[0]) append(line, capacity, "; companions not loaded: %s", status->companions);
}
