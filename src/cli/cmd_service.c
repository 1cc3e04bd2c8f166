#include "base/banned.h"
