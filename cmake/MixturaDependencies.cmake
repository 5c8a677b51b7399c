# Finds mixtura's dependencies; a missing one stops the configure naming the Debian package.
include(GNUInstallDirs)

# ---- Eigen: an installed Eigen 3.3+ first, else the pinned 3.4.0 release archive ---------------
# URL and hash are cache variables so that a mirror or a local copy can stand in (offline builds:
# -DFETCHCONTENT_SOURCE_DIR_EIGEN=<dir holding Eigen/> skips the download altogether).
option(MIXTURA_FETCH_EIGEN "Download Eigen (MIXTURA_EIGEN_URL) when no installed Eigen3 is found" ON)
set(MIXTURA_EIGEN_URL "https://gitlab.com/libeigen/eigen/-/archive/3.4.0/eigen-3.4.0.tar.gz"
    CACHE STRING "Eigen release archive fetched when find_package(Eigen3) fails")
set(MIXTURA_EIGEN_SHA256 "8586084f71f9bde545ee7fa6d00288b264a2b7ac3607b974e54d13e7162c1c72"
    CACHE STRING "SHA-256 of MIXTURA_EIGEN_URL")
set(MIXTURA_EIGEN_FETCHED OFF)

find_package(Eigen3 3.3 CONFIG QUIET)
if(TARGET Eigen3::Eigen)
  message(STATUS "mixtura: Eigen ${Eigen3_VERSION} from ${Eigen3_DIR}")
elseif(NOT MIXTURA_FETCH_EIGEN)
  message(FATAL_ERROR "mixtura needs Eigen 3.3 or newer, which was not found. On Debian/Ubuntu: "
                      "apt-get install libeigen3-dev (or configure with -DMIXTURA_FETCH_EIGEN=ON)")
else()
  include(FetchContent)
  if(POLICY CMP0135)  # unpacked files get the extraction time: a new archive rebuilds what uses it
    cmake_policy(SET CMP0135 NEW)
  endif()
  # Headers only: SOURCE_SUBDIR names a folder without CMakeLists.txt, so MakeAvailable unpacks
  # Eigen without configuring its own project (tests, docs, BLAS checks, install rules).
  FetchContent_Declare(eigen
    URL "${MIXTURA_EIGEN_URL}"
    URL_HASH SHA256=${MIXTURA_EIGEN_SHA256}
    SOURCE_SUBDIR mixtura-headers-only)
  FetchContent_MakeAvailable(eigen)
  set(_mx_macros "${eigen_SOURCE_DIR}/Eigen/src/Core/util/Macros.h")
  if(NOT EXISTS "${_mx_macros}")
    message(FATAL_ERROR "mixtura: ${eigen_SOURCE_DIR} holds no Eigen/ headers (from ${MIXTURA_EIGEN_URL} "
                        "or FETCHCONTENT_SOURCE_DIR_EIGEN)")
  endif()
  file(STRINGS "${_mx_macros}" _mx_eigen_v REGEX "#define EIGEN_(WORLD|MAJOR|MINOR)_VERSION [0-9]+")
  string(REGEX REPLACE ".*WORLD_VERSION ([0-9]+);.*MAJOR_VERSION ([0-9]+);.*MINOR_VERSION ([0-9]+).*"
                       "\\1.\\2.\\3" MIXTURA_EIGEN_VERSION "${_mx_eigen_v}")
  if(MIXTURA_EIGEN_VERSION VERSION_LESS 3.3)
    message(FATAL_ERROR "mixtura needs Eigen 3.3 or newer; ${eigen_SOURCE_DIR} holds ${MIXTURA_EIGEN_VERSION}")
  endif()
  message(STATUS "mixtura: Eigen ${MIXTURA_EIGEN_VERSION} fetched into ${eigen_SOURCE_DIR}")
  # mixtura_eigen is exported with mixtura (as mixtura::eigen) and its headers installed beside
  # mixtura's, so that an installed mixtura needs no Eigen on the consumer's machine either.
  set(MIXTURA_EIGEN_FETCHED ON)
  set(MIXTURA_EIGEN_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}/mixtura/third_party/eigen3")
  add_library(mixtura_eigen INTERFACE)
  set_target_properties(mixtura_eigen PROPERTIES EXPORT_NAME eigen)
  # Two calls: an exported SYSTEM include path would lose its install prefix (CMake 3.25).
  target_include_directories(mixtura_eigen SYSTEM INTERFACE $<BUILD_INTERFACE:${eigen_SOURCE_DIR}>)
  target_include_directories(mixtura_eigen INTERFACE $<INSTALL_INTERFACE:${MIXTURA_EIGEN_INCLUDEDIR}>)
  add_library(Eigen3::Eigen ALIAS mixtura_eigen)
endif()

# ---- OpenMP: optional; without it the data passes run serially with the same bits --------------
# (parallel.hpp folds fixed row blocks in a fixed order whatever the thread count.) A compiler
# without OpenMP (Apple clang) gets a warning and a serial build, unless MIXTURA_REQUIRE_OPENMP.
option(MIXTURA_REQUIRE_OPENMP "Fail the configure when MIXTURA_WITH_OPENMP is ON and OpenMP is missing" OFF)
if(MIXTURA_WITH_OPENMP)
  find_package(OpenMP COMPONENTS CXX QUIET)
  if(NOT OpenMP_CXX_FOUND)
    string(CONCAT _mx_omp_hint "On Debian/Ubuntu: apt-get install libgomp1 (g++) or libomp-dev (clang++); "
                  "on macOS: brew install libomp, then -DOpenMP_ROOT=$(brew --prefix libomp)")
    if(MIXTURA_REQUIRE_OPENMP)
      message(FATAL_ERROR "mixtura: OpenMP was not found for ${CMAKE_CXX_COMPILER_ID} and "
                          "MIXTURA_REQUIRE_OPENMP is ON. ${_mx_omp_hint}")
    endif()
    message(WARNING "mixtura: OpenMP was not found for ${CMAKE_CXX_COMPILER_ID}: building serial data "
                    "passes (same results, one thread). ${_mx_omp_hint}")
    # A normal variable shadows the cached request for this configure only: the next configure
    # looks for OpenMP again, and the installed package config records the serial build.
    set(MIXTURA_WITH_OPENMP OFF)
  endif()
endif()

if(MIXTURA_WITH_CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    message(FATAL_ERROR "mixtura: MIXTURA_WITH_CUDA is ON but no CUDA compiler (nvcc) was found. "
                        "Install the CUDA Toolkit (Debian: nvidia-cuda-toolkit) and put nvcc on PATH, "
                        "or configure with -DMIXTURA_WITH_CUDA=OFF")
  endif()
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80 90)  # A100, H100/H200
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
endif()

set(MIXTURA_GTEST_SOURCE_DIR "" CACHE PATH
    "Build GoogleTest from these sources (e.g. /usr/src/googletest) instead of finding it: cross builds")
if(MIXTURA_BUILD_TESTS AND MIXTURA_GTEST_SOURCE_DIR)
  # Built with the project's compiler, so a cross build needs no target-architecture libgtest.
  set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
  set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
  add_subdirectory(${MIXTURA_GTEST_SOURCE_DIR} ${CMAKE_BINARY_DIR}/_googletest EXCLUDE_FROM_ALL)
elseif(MIXTURA_BUILD_TESTS)
  find_package(GTest CONFIG QUIET)
  if(NOT TARGET GTest::gtest_main)
    find_package(GTest QUIET)
  endif()
  if(NOT TARGET GTest::gtest_main)
    message(FATAL_ERROR "mixtura tests need GoogleTest. On Debian/Ubuntu: apt-get install libgtest-dev "
                        "(or configure with -DMIXTURA_BUILD_TESTS=OFF)")
  endif()
endif()

if(MIXTURA_BUILD_BENCHMARKS)
  find_package(benchmark CONFIG QUIET)
  if(NOT TARGET benchmark::benchmark)
    message(FATAL_ERROR "mixtura benchmarks need Google Benchmark. On Debian/Ubuntu: apt-get install "
                        "libbenchmark-dev (or configure with -DMIXTURA_BUILD_BENCHMARKS=OFF)")
  endif()
endif()
