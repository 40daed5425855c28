// One thread: the wasm32 C++ library here is built without threads (no std::mutex,
// std::condition_variable or std::thread). C++ code that can also run threaded, and
// never starts a second thread when the machine has one core, gets these stand-ins:
// locks that are always free, and a std::thread whose hardware_concurrency() is 1 and
// whose start (which that code never reaches) traps. tools/native_wasi.py includes this
// file first in the packages whose Spec names it.
#pragma once
#include <condition_variable>
#include <mutex>
#include <thread>

#ifdef _LIBCPP_HAS_NO_THREADS
namespace std {

struct mutex {
    void lock() {}
    bool try_lock() { return true; }
    void unlock() {}
};

struct recursive_mutex : mutex {};

template <class Mutex>
class unique_lock {
public:
    explicit unique_lock(Mutex& m) : mutex_(&m) {}
    void lock() {}
    void unlock() {}
    bool owns_lock() const { return true; }
    Mutex* mutex() const { return mutex_; }

private:
    Mutex* mutex_;
};

struct condition_variable {
    void notify_one() {}
    void notify_all() {}
    // Waiting for another thread, with none to wake it, would never end.
    template <class Lock>
    void wait(Lock&) { __builtin_trap(); }
};

class thread {
public:
    static unsigned hardware_concurrency() noexcept { return 1; }
    template <class F, class... Args>
    explicit thread(F&&, Args&&...) { __builtin_trap(); }
    void join() {}
    bool joinable() const { return false; }
};

}  // namespace std
#endif
