# `cmake --install BUILD --prefix P` installs quint for other projects:
#   P/include/quint/*.h                         the public API (runtime/include/quint)
#   P/lib/libquint.a (or .so with -DBUILD_SHARED_LIBS=ON)
#   P/lib/cmake/quint/quintConfig.cmake + quintConfigVersion.cmake + quintTargets*.cmake
#                                               find_package(quint) -> target quint::quint
#   P/lib/pkgconfig/quint.pc                    pkg-config --cflags --libs quint
#   P/bin/quint                                 the CLI
#   P/${QUINT_PYTHON_INSTALL_DIR}/quint/        the Python module (when built, see python/)
# Only runtime/include/quint is installed: those headers include nothing but each other and the
# standard library (no protobuf, no ops/ internals), which tests/install checks by compiling
# each header on its own against the installed tree.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(QUINT_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/quint" CACHE STRING
    "Where quintConfig.cmake is installed, relative to the prefix")

# The installed target: headers from P/include, and consumers compile as C++20 (std::span).
target_include_directories(quint INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(quint INTERFACE cxx_std_20)
set_target_properties(quint PROPERTIES EXPORT_NAME quint VERSION ${PROJECT_VERSION}
                                       SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})

install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/include/quint
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev FILES_MATCHING PATTERN "*.h")
install(TARGETS quint EXPORT quintTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS quint_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT quintTargets NAMESPACE quint:: DESTINATION ${QUINT_INSTALL_CMAKEDIR} COMPONENT dev)

# A static libquint.a leaves ONNX's schema library, protobuf and threads to the final link, so
# the config looks them up (find_dependency) and quint.pc lists them; a shared libquint.so
# carries them itself.
get_target_property(_quint_type quint TYPE)
if(_quint_type STREQUAL "SHARED_LIBRARY")
  set(QUINT_CONFIG_SHARED TRUE)
  set(QUINT_PC_REQUIRES "Requires.private: protobuf")
  set(QUINT_PC_LIBS "")
  set(QUINT_PC_LIBS_PRIVATE "Libs.private: -lonnx_proto -pthread")
else()
  set(QUINT_CONFIG_SHARED FALSE)
  set(QUINT_PC_REQUIRES "Requires: protobuf")
  set(QUINT_PC_LIBS "-lonnx_proto -pthread")
  set(QUINT_PC_LIBS_PRIVATE "")
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/quintConfig.cmake.in
  ${PROJECT_BINARY_DIR}/quintConfig.cmake INSTALL_DESTINATION ${QUINT_INSTALL_CMAKEDIR})
# 0.x: minor versions may break the API, so only the same major.minor satisfies a request.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/quintConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/quintConfig.cmake ${PROJECT_BINARY_DIR}/quintConfigVersion.cmake
        DESTINATION ${QUINT_INSTALL_CMAKEDIR} COMPONENT dev)

# quint.pc finds the prefix from its own location, so `--prefix` at install time is honoured.
file(RELATIVE_PATH QUINT_PC_RELATIVE_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" QUINT_PC_RELATIVE_PREFIX "${QUINT_PC_RELATIVE_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/quint.pc.in ${PROJECT_BINARY_DIR}/quint.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/quint.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

if(QUINT_BUILD_TESTS)
  # tests/install: install this build into a scratch prefix, build and run consumers against it
  # with find_package and with pkg-config (see tests/install/run.sh).
  add_test(NAME install_consumer
           COMMAND bash ${PROJECT_SOURCE_DIR}/tests/install/run.sh ${PROJECT_BINARY_DIR} ${PROJECT_BINARY_DIR}/install-test)
  set_tests_properties(install_consumer PROPERTIES TIMEOUT 900)
endif()
