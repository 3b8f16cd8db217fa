#ifndef ML_H2_VERSION_H
#define ML_H2_VERSION_H

/* "nghttp2 1.64.0" (the library linked, not the header compiled against); static storage. */
const char *ml_h2_library_version(void);

#endif
