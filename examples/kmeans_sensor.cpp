// K-means on a real sensor stream: NAB's machine temperature (bundled in python/mixtura/data).
//
// Sliding windows of the (standardised) readings are clustered with mixtura::KMeans on the first
// part of the series (NAB's probationary period); every window is then scored by its distance to
// the nearest centre. The program prints the fit's distortion trace, the flagged time ranges and,
// with NAB's labels, the ROC-AUC of the score.
//
//   kmeans_sensor [FILE.csv] [--labels WINDOWS.csv] [--window W] [--clusters K] [--train-fraction F]
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "mixtura/kmeans.hpp"

#ifndef MIXTURA_EXAMPLE_DATA_DIR
#define MIXTURA_EXAMPLE_DATA_DIR "python/mixtura/data"
#endif

namespace {

struct Series {
  std::vector<std::string> time;
  std::vector<double> value;
};

// Reads "timestamp,value" lines after a header; errors name the file and the line.
Series read_series(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  Series s;
  std::string line;
  long line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1 || line.empty()) continue;  // header
    const auto comma = line.find(',');
    if (comma == std::string::npos)
      throw std::runtime_error(path + ":" + std::to_string(line_no) + ": expected 'timestamp,value', got '" + line + "'");
    const std::string field = line.substr(comma + 1);
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(field.c_str(), &end);
    if (end == field.c_str() || *end != '\0' || errno != 0 || !std::isfinite(v))
      throw std::runtime_error(path + ":" + std::to_string(line_no) + ": value '" + field + "' is not a finite number");
    s.time.push_back(line.substr(0, comma));
    s.value.push_back(v);
  }
  if (s.value.empty()) throw std::runtime_error(path + ": no readings");
  return s;
}

// NAB windows as "start,end" timestamps (same format as the series, so they compare as strings).
std::vector<std::pair<std::string, std::string>> read_windows(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::pair<std::string, std::string>> w;
  if (!in) return w;
  std::string line;
  for (long line_no = 1; std::getline(in, line); ++line_no) {
    if (line_no == 1 || line.empty()) continue;
    const auto comma = line.find(',');
    if (comma == std::string::npos) throw std::runtime_error(path + ":" + std::to_string(line_no) + ": expected 'start,end'");
    w.emplace_back(line.substr(0, comma), line.substr(comma + 1));
  }
  return w;
}

// ROC-AUC as the Mann-Whitney statistic, ties counted half.
double roc_auc(const std::vector<double>& score, const std::vector<int>& label) {
  std::vector<std::size_t> idx(score.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return score[a] < score[b]; });
  double rank_sum = 0, n_pos = 0;
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    while (j < idx.size() && score[idx[j]] == score[idx[i]]) ++j;
    const double mid_rank = 0.5 * static_cast<double>(i + j + 1);  // ranks i+1 .. j averaged
    for (std::size_t t = i; t < j; ++t)
      if (label[idx[t]]) {
        rank_sum += mid_rank;
        ++n_pos;
      }
    i = j;
  }
  const double n_neg = static_cast<double>(score.size()) - n_pos;
  if (n_pos == 0 || n_neg == 0) return NAN;
  return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg);
}

}  // namespace

int main(int argc, char** argv) {
  std::string file = MIXTURA_EXAMPLE_DATA_DIR "/machine_temperature_system_failure.csv";
  std::string labels = MIXTURA_EXAMPLE_DATA_DIR "/machine_temperature_system_failure.windows.csv";
  int window = 12, clusters = 8;
  double train_fraction = 0.15;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument("missing value after " + a);
        return argv[++i];
      };
      if (a == "--labels") labels = next();
      else if (a == "--window") window = std::stoi(next());
      else if (a == "--clusters") clusters = std::stoi(next());
      else if (a == "--train-fraction") train_fraction = std::stod(next());
      else if (!a.empty() && a[0] == '-') throw std::invalid_argument("unknown option " + a);
      else {
        file = a;
        labels.clear();  // another file: labels only if given
      }
    }
    if (window < 1) throw std::invalid_argument("--window must be >= 1");
    if (!(train_fraction > 0 && train_fraction <= 1)) throw std::invalid_argument("--train-fraction must be in (0, 1]");

    const Series s = read_series(file);
    const long n = static_cast<long>(s.value.size());
    const long n_windows = n - window + 1;
    const long n_train = std::max(1L, static_cast<long>(train_fraction * n_windows));
    if (n_windows < 1) throw std::invalid_argument("fewer readings than --window");

    // Standardise with the training part's mean and deviation, then lay the windows out as rows.
    const long train_end = n_train + window - 1;
    double mean = 0, var = 0;
    for (long i = 0; i < train_end; ++i) mean += s.value[i];
    mean /= static_cast<double>(train_end);
    for (long i = 0; i < train_end; ++i) var += (s.value[i] - mean) * (s.value[i] - mean);
    const double sd = std::sqrt(var / static_cast<double>(train_end)) + 1e-12;
    mixtura::RowMatrix<double> x(n_windows, window);
    for (long r = 0; r < n_windows; ++r)
      for (int j = 0; j < window; ++j) x(r, j) = (s.value[r + j] - mean) / sd;

    mixtura::KMeansParams p;
    p.n_clusters = clusters;
    p.n_init = 4;
    p.seed = 0;
    mixtura::KMeans<double> km(p);
    km.fit(mixtura::MatrixView<double>(x.data(), n_train, window));

    std::printf("mixtura %s K-means on %s\n", mixtura::version(), file.c_str());
    std::printf("  %ld readings, %ld windows of %d, fitted on the first %ld (%.0f %%), K = %d, %d restarts\n", n,
                n_windows, window, n_train, 100 * train_fraction, clusters, p.n_init);
    std::printf("  kept restart %d: %d iterations, converged = %s, inertia %.6g\n", km.best_restart(), km.n_iter(),
                km.converged() ? "yes" : "no", km.inertia());
    std::printf("  %4s  %14s  %14s  %9s\n", "iter", "J assign", "J update", "ms");
    for (std::size_t i = 0; i < km.trace().size(); ++i)
      std::printf("  %4zu  %14.6f  %14.6f  %9.3f\n", i, km.trace()[i].distortion_assign,
                  km.trace()[i].distortion_update, km.trace()[i].seconds * 1e3);
    for (const auto& e : km.events())
      std::printf("  event: restart %d iteration %d cluster %d: %s (row %lld)\n", e.restart, e.iteration, e.cluster,
                  mixtura::to_string(e.kind), static_cast<long long>(e.row));

    // Score = distance to the nearest centre, given to the last reading of each window.
    const mixtura::RowMatrix<double> dist = km.transform(x);
    std::vector<double> score(static_cast<std::size_t>(n), 0.0);
    for (long r = 0; r < n_windows; ++r) score[r + window - 1] = dist.row(r).minCoeff();
    std::vector<double> train_scores(score.begin() + window - 1, score.begin() + train_end);
    std::sort(train_scores.begin(), train_scores.end());
    const double threshold = train_scores.back();  // the largest distance seen in training
    std::printf("  threshold (largest training score): %.4f\n", threshold);

    // Flagged runs of consecutive readings above the threshold, after the training part.
    struct Run { long begin, end; double peak; };
    std::vector<Run> runs;
    for (long i = train_end; i < n; ++i) {
      if (score[i] <= threshold) continue;
      if (!runs.empty() && runs.back().end >= i - 12) {  // gaps under an hour join a run
        runs.back().end = i;
        runs.back().peak = std::max(runs.back().peak, score[i]);
      } else {
        runs.push_back({i, i, score[i]});
      }
    }
    std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.peak > b.peak; });
    std::printf("  %zu flagged ranges; the strongest:\n", runs.size());
    for (std::size_t i = 0; i < std::min<std::size_t>(5, runs.size()); ++i)
      std::printf("    %s .. %s  peak score %.3f\n", s.time[runs[i].begin].c_str(), s.time[runs[i].end].c_str(),
                  runs[i].peak);

    const auto windows = labels.empty() ? decltype(read_windows("")){} : read_windows(labels);
    if (!windows.empty()) {
      std::vector<double> test_score(score.begin() + train_end, score.end());
      std::vector<int> test_label;
      for (long i = train_end; i < n; ++i) {
        int in = 0;
        for (const auto& w : windows) in |= s.time[i] >= w.first && s.time[i] <= w.second;
        test_label.push_back(in);
      }
      std::printf("  ROC-AUC against NAB's labelled windows (readings after the training part): %.3f\n",
                  roc_auc(test_score, test_label));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kmeans_sensor: %s\n", e.what());
    return 1;
  }
  return 0;
}
