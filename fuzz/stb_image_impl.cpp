// stb_image compiled into the fuzz build, so that libFuzzer's coverage and ASan/UBSan reach
// the PNG decoder behind tweedie::io::parse_png (the normal build links Debian's libstb, which
// is not instrumented). This object comes before -lstb on the link line, so its definitions win.
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
