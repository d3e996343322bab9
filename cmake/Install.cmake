# `cmake --install build --prefix P` (docs/install.md):
#   P/bin/tweedie                       the command-line tool
#   P/lib/libtweedie.so                 the library (RUNPATH of both: $ORIGIN-relative, movable)
#   P/include/tweedie/...               the public headers (internal ones below are not installed)
#   P/lib/cmake/tweedie/                tweedieConfig.cmake: find_package(tweedie) -> tweedie::tweedie
#   P/share/tweedie/models, experiments the shipped priors, classifier, GMM and experiment specs
#   P/lib/python3/dist-packages/tweedie the Python module (when it is built)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Headers used only inside the library (file-format plumbing, JSON input helpers): not part of
# the API, not installed. The install test checks that every installed header includes only
# installed headers.
set(TWEEDIE_INTERNAL_HEADERS
  tweedie/core/json_input.h
  tweedie/io/byte_order.h
  tweedie/io/mapped_file.h
  tweedie/io/pickle.h
  tweedie/io/zip_reader.h)

file(GLOB_RECURSE _headers RELATIVE ${PROJECT_SOURCE_DIR} CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tweedie/*.h)
list(REMOVE_ITEM _headers ${TWEEDIE_INTERNAL_HEADERS})
foreach(_h ${_headers})
  get_filename_component(_dir ${_h} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/${_h} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/${_dir} COMPONENT dev)
endforeach()
install(FILES ${PROJECT_BINARY_DIR}/generated/tweedie/core/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tweedie/core COMPONENT dev)

# Installed binaries find the library beside them by a relative RUNPATH, so the prefix can move.
file(RELATIVE_PATH _bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
set_target_properties(tweedie_cli PROPERTIES INSTALL_RPATH "$ORIGIN/${_bin_to_lib}")
install(TARGETS tweedie EXPORT tweedieTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS tweedie_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT tweedieTargets NAMESPACE tweedie:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tweedie COMPONENT dev)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/tweedieConfig.cmake.in
  ${PROJECT_BINARY_DIR}/tweedieConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tweedie)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tweedieConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tweedieConfig.cmake ${PROJECT_BINARY_DIR}/tweedieConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tweedie COMPONENT dev)

# The shipped data: finished models with their cards and architectures (no training checkpoints,
# no model still in training) and the experiment specs. Fashion-MNIST and the test images stay
# in their Debian packages; the library reads them from there.
set(TWEEDIE_SHIPPED_MODELS fmnist32 fmnist32-long fmnist32-400k fmnist-classifier fmnist-gmm configs)
foreach(_m ${TWEEDIE_SHIPPED_MODELS})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/models/${_m} DESTINATION ${CMAKE_INSTALL_DATADIR}/tweedie/models
          PATTERN "checkpoint*" EXCLUDE PATTERN "evals" EXCLUDE PATTERN "snapshots" EXCLUDE
          PATTERN "recipes" EXCLUDE)
endforeach()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/experiments DESTINATION ${CMAKE_INSTALL_DATADIR}/tweedie)
