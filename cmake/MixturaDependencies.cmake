# Finds mixtura's dependencies; a missing one stops the configure naming the Debian package.
include(GNUInstallDirs)

find_package(Eigen3 3.3 CONFIG QUIET)
if(NOT TARGET Eigen3::Eigen)
  message(FATAL_ERROR "mixtura needs Eigen 3.3 or newer, which was not found. "
                      "On Debian/Ubuntu: apt-get install libeigen3-dev")
endif()

if(MIXTURA_WITH_OPENMP)
  find_package(OpenMP COMPONENTS CXX QUIET)
  if(NOT OpenMP_CXX_FOUND)
    message(FATAL_ERROR "mixtura: OpenMP was not found for ${CMAKE_CXX_COMPILER_ID}. On Debian/Ubuntu: "
                        "apt-get install libgomp1 (g++) or libomp-dev (clang++); "
                        "or configure with -DMIXTURA_WITH_OPENMP=OFF for a serial build")
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

if(MIXTURA_BUILD_TESTS)
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
