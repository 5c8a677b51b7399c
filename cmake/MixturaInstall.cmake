# cmake --install exports mixtura::mixtura (and mixtura::cuda, mixtura::dispatched when built) for
# find_package(mixtura).
include(CMakePackageConfigHelpers)

set(MIXTURA_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mixtura)
install(DIRECTORY include/mixtura DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set(_mx_targets mixtura)
if(MIXTURA_WITH_CUDA)
  list(APPEND _mx_targets mixtura_cuda)
endif()
if(MIXTURA_BUILD_DISPATCHED)
  list(APPEND _mx_targets ${MIXTURA_DISPATCHED_TARGETS})
endif()
if(MIXTURA_EIGEN_FETCHED)  # the fetched Eigen's headers (and its licence) go with mixtura's
  list(APPEND _mx_targets mixtura_eigen)
  install(DIRECTORY "${eigen_SOURCE_DIR}/Eigen" DESTINATION ${MIXTURA_EIGEN_INCLUDEDIR})
  install(FILES "${eigen_SOURCE_DIR}/COPYING.MPL2" DESTINATION ${MIXTURA_EIGEN_INCLUDEDIR} OPTIONAL)
endif()
install(TARGETS ${_mx_targets} EXPORT mixturaTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT mixturaTargets NAMESPACE mixtura:: DESTINATION ${MIXTURA_CMAKE_DIR})

configure_package_config_file(cmake/mixturaConfig.cmake.in
  ${PROJECT_BINARY_DIR}/mixturaConfig.cmake INSTALL_DESTINATION ${MIXTURA_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mixturaConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mixturaConfig.cmake ${PROJECT_BINARY_DIR}/mixturaConfigVersion.cmake
  DESTINATION ${MIXTURA_CMAKE_DIR})
