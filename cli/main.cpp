#include <iostream>
#include "tweedie/core/version.h"
int main() { std::cout << "tweedie " TWEEDIE_VERSION " (" TWEEDIE_GIT_HASH ")\n"; }
