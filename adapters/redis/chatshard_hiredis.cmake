# Defines chatshard::hiredis, an imported target for hiredis >= 0.14, once;
# sets chatshard_hiredis_FOUND. Included by adapters/redis/CMakeLists.txt and,
# installed beside it, by chatshardConfig.cmake, so that the build and a host
# project find hiredis the same way.
#
# Debian's HiredisConfig.cmake sets HIREDIS_INCLUDE_DIRS / HIREDIS_LIBRARIES
# but defines no imported target (and fails without a requested version), so
# the target is made here; pkg-config is the fallback for other installs.
if(NOT TARGET chatshard::hiredis)
  find_package(Hiredis 0.14 CONFIG QUIET)
  if(Hiredis_FOUND AND HIREDIS_LIBRARIES)
    add_library(chatshard::hiredis INTERFACE IMPORTED GLOBAL)
    set_target_properties(chatshard::hiredis PROPERTIES
                          INTERFACE_INCLUDE_DIRECTORIES "${HIREDIS_INCLUDE_DIRS}"
                          INTERFACE_LINK_LIBRARIES "${HIREDIS_LIBRARIES}")
  else()
    find_package(PkgConfig QUIET)
    if(PkgConfig_FOUND)
      pkg_check_modules(CHATSHARD_HIREDIS QUIET IMPORTED_TARGET GLOBAL hiredis>=0.14)
    endif()
    if(CHATSHARD_HIREDIS_FOUND)
      add_library(chatshard::hiredis INTERFACE IMPORTED GLOBAL)
      set_target_properties(chatshard::hiredis PROPERTIES
                            INTERFACE_LINK_LIBRARIES PkgConfig::CHATSHARD_HIREDIS)
    endif()
  endif()
endif()
if(TARGET chatshard::hiredis)
  set(chatshard_hiredis_FOUND TRUE)
else()
  set(chatshard_hiredis_FOUND FALSE)
endif()
