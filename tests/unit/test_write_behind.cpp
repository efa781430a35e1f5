// The write-behind thread (io/write_behind.hpp): submit() returns while its job runs; jobs
// run one at a time in the order given; wait() returns once every job is done; a failure
// reaches the caller, with its type, at the next submit() or wait(), every time after, and
// no later job runs; the destructor finishes the job in hand; the thread blocks the stop
// signals; without a thread a job runs inside submit().
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "io/write_behind.hpp"
#include "util/error.hpp"

namespace dualnet {
namespace {

TEST(WriteBehind, SubmitReturnsWhileTheJobRunsAndWaitReturnsOnceItIsDone) {
  WriteBehind w(true);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> done{false};
  w.submit([released, &done] {
    released.wait_for(std::chrono::seconds(10));  // the job does not end before the test lets it
    done = true;
  });
  EXPECT_FALSE(done);  // submit() came back with the job still running
  release.set_value();
  w.wait();
  EXPECT_TRUE(done);
}

TEST(WriteBehind, JobsRunOneAtATimeInTheOrderGiven) {
  WriteBehind w(true);
  std::vector<int> order;  // written by the jobs only: one job at a time
  std::atomic<int> running{0}, most{0};
  for (int i = 0; i < 20; ++i)
    w.submit([i, &order, &running, &most] {
      most = std::max(most.load(), ++running);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      order.push_back(i);
      --running;
    });
  w.wait();
  ASSERT_EQ(order.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(most, 1);
}

TEST(WriteBehind, AFailureReachesTheCallerWithItsTypeAndStopsLaterJobs) {
  for (const bool background : {true, false}) {
    SCOPED_TRACE(background ? "thread" : "inline");
    WriteBehind w(background);
    bool later_ran = false;
    const auto fail = [] { throw UsageError("cannot write 'x': No space left on device"); };
    if (background) {
      w.submit(fail);  // reported by the next call, not by this one
      EXPECT_THROW(w.submit([&] { later_ran = true; }), UsageError);
    } else {
      EXPECT_THROW(w.submit(fail), UsageError);
    }
    // Sticky: every later call says it again, with the same words, and runs nothing.
    try {
      w.wait();
      ADD_FAILURE() << "wait() after a failure returned";
    } catch (const UsageError& e) {
      EXPECT_EQ(std::string(e.what()), "cannot write 'x': No space left on device");
    }
    EXPECT_THROW(w.submit([&] { later_ran = true; }), UsageError);
    EXPECT_FALSE(later_ran);
  }
  WriteBehind w(true);  // any type: a RuntimeError stays one
  w.submit([] { throw RuntimeError("disk gone"); });
  EXPECT_THROW(w.wait(), RuntimeError);
}

TEST(WriteBehind, TheDestructorFinishesTheJobInHand) {
  std::atomic<bool> done{false};
  {
    WriteBehind w(true);
    w.submit([&done] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      done = true;
    });
  }
  EXPECT_TRUE(done);
  {
    WriteBehind w(true);
    w.submit([] { throw RuntimeError("dropped: the caller is already failing"); });
  }  // no throw from a destructor
}

TEST(WriteBehind, TheThreadBlocksTheStopSignals) {
  WriteBehind w(true);
  std::vector<int> blocked;
  w.submit([&blocked] {
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    for (int sig : {SIGTERM, SIGINT, SIGUSR1})
      if (sigismember(&mask, sig) == 1) blocked.push_back(sig);
  });
  w.wait();
  EXPECT_EQ(blocked.size(), 3u);
  sigset_t mine;  // and the caller's mask is as it was
  pthread_sigmask(SIG_BLOCK, nullptr, &mine);
  EXPECT_EQ(sigismember(&mine, SIGTERM), 0);
}

TEST(WriteBehind, WithoutAThreadAJobRunsInsideSubmit) {
  WriteBehind w(false);
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id ran_on;
  w.submit([&ran_on] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, caller);
  WriteBehind t(true);
  t.submit([&ran_on] { ran_on = std::this_thread::get_id(); });
  t.wait();
  EXPECT_NE(ran_on, caller);
  EXPECT_GE(t.busy_seconds(), 0.0);
}

}  // namespace
}  // namespace dualnet
